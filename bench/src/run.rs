//! `bench run`: the phases, in order, each step timed and recorded in
//! `run.json` as it completes, then the report. The output directory's
//! layout: `docs/benchmark.md`, "Stats files". The live producer starts
//! once both consumers have written their ready files (`--ready-file`).

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use consumer_core::Model;
use serde::Serialize;

use crate::argv::argv;
use crate::ceilings::{db_bytes, remove_db};
use crate::cli::{QueryArgs, RunArgs};
use crate::machine::{Machine, ProcSampler};
use crate::phase::{self, Env, PhaseSpec, Segment, drain_limit};
use crate::results::{Results, RunConfig, RunRecord, Step};
use crate::stats::{ProducerStats, STATS_VERSION, read_stats};
use crate::verify::{self, Check};
use crate::{plots, report};
use testkit::procs::{Finished, Proc};

mod backlog;
mod live;

use backlog::{backlog, raw_to_throwaway_topic};
use live::{live_phase, saturation};

struct Ctx<'a> {
    args: &'a RunArgs,
    env: Env,
    record: RunRecord,
    checks: Vec<Check>,
    started: Instant,
}

/// Non-zero exit on any failed check or step.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let Some(start) = args.common.start("", "bench")? else {
        return Ok(ExitCode::SUCCESS);
    };
    let (out, settings) = (start.env.out.clone(), &args.common.settings);
    let mut rates = args.rates.clone();
    rates.retain(|&r| r > 0);
    rates.dedup();
    let events = if args.skip_backlog { 0 } else { args.events };

    let record = RunRecord {
        version: STATS_VERSION,
        command: start.command,
        started_at: start.iso,
        config: RunConfig {
            events,
            rates: rates.clone(),
            duration_s: args.duration,
            warmup_s: args.warmup,
            run_id: start.env.run_id.clone(),
            settings: settings.clone(),
            saturation_p99_ms: args.saturation.then_some(args.saturation_p99_ms),
        },
        machine: Machine::probe(),
        broker: start.broker,
        ..Default::default()
    };
    let mut ctx = Ctx {
        args,
        env: start.env,
        record,
        checks: Vec::new(),
        started: Instant::now(),
    };
    eprintln!(
        "bench: output in {}; broker {} ({}, {}{}); {} backlog events, live rates {:?} for {} s each",
        out.display(),
        ctx.record.broker.address,
        ctx.record.broker.kind,
        ctx.record.broker.version,
        match ctx.record.broker.pid {
            Some(pid) => format!(", pid {pid}"),
            None => ", not sampled: no local process id".into(),
        },
        events,
        rates,
        args.duration
    );
    ctx.save()?;

    // A broker that has just started is slower than one that has taken
    // some load (the JVM compiling; docs/benchmark.md): warm it up on a
    // throw-away topic before anything is measured.
    if !(args.skip_backlog && rates.is_empty()) {
        let warm = args.events.clamp(1, 1_000_000);
        let dir = out.join("warm-up");
        std::fs::create_dir_all(&dir)?;
        ctx.step_or_fail(
            "warm-up",
            &format!("broker warm-up: {warm} events to a throw-away topic"),
            "broker warm-up",
            |ctx| raw_to_throwaway_topic(ctx, &dir, "producer-warm-up", warm).map(drop),
        );
    }

    // On the embedded broker (Nisshi) the live phases come first: its
    // in-memory engine slows down as it holds more. Apache Kafka does not,
    // but its JVM keeps compiling through the first minute of load, so
    // there the backlog comes first and the live phases meet a broker in
    // steady state (docs/benchmark.md).
    let live_first = ctx.record.broker.kind == "nisshi";
    let live_phases = |ctx: &mut Ctx<'_>| {
        for &rate in &rates {
            if let Err(e) = live_phase(ctx, "live", rate) {
                ctx.fail(format!("live phase at {rate}/s: {e:#}"));
            }
        }
    };
    if live_first {
        live_phases(&mut ctx);
    }
    if !args.skip_backlog
        && let Err(e) = backlog(&mut ctx)
    {
        ctx.fail(format!("backlog phase: {e:#}"));
    }
    if !live_first {
        // The broker compiles its live code paths only once live load
        // starts: one unmeasured live step at the middle rate first
        // (`warm-up-live-<rate>`, verified, left out of the results).
        if let Some(&rate) = rates.get(rates.len() / 2)
            && let Err(e) = live_phase(&mut ctx, "warm-up-live", rate)
        {
            ctx.fail(format!("live warm-up at {rate}/s: {e:#}"));
        }
        live_phases(&mut ctx);
    }
    if args.saturation {
        saturation(&mut ctx);
    }

    ctx.record.orchestrator_max_rss_bytes = common::ResourceUsage::now().max_rss_bytes;
    ctx.record.finished_at = utc(SystemTime::now()).0;
    ctx.record.wall_seconds = ctx.started.elapsed().as_secs_f64();
    ctx.save()?;
    let results = write_report(&out)?;

    println!("\n{}", report::table(&results));
    let failed = ctx.checks.iter().filter(|c| !c.pass).count();
    println!(
        "verification {}: {} check(s), {failed} failed",
        results.verification,
        ctx.checks.len()
    );
    for f in &ctx.record.failures {
        println!("failure: {f}");
    }
    println!(
        "benchmark finished in {:.0} s; report: {}",
        ctx.record.wall_seconds,
        out.join("report.md").display()
    );
    let pass = results.verification == "PASS" && ctx.record.failures.is_empty();
    Ok(crate::cli::exit_code(pass))
}

/// Writes results.json, the pictures and report.md of the run in `dir`.
pub fn write_report(dir: &Path) -> anyhow::Result<Results> {
    let results = Results::collect(dir)?;
    let pictures = plots::draw::drawn(plots::draw_all(&results, dir), "bench");
    let names: Vec<String> = pictures
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    common::stats::write_json(&dir.join("results.json"), &results)
        .context("cannot write results.json")?;
    std::fs::write(dir.join("report.md"), report::render(&results, &names))
        .context("cannot write report.md")?;
    Ok(results)
}

impl Ctx<'_> {
    fn save(&self) -> anyhow::Result<()> {
        common::stats::write_json(&self.env.out.join("run.json"), &self.record)
            .context("cannot write run.json")?;
        common::stats::write_json(&self.env.out.join("verification.json"), &self.checks)
            .context("cannot write verification.json")
    }

    fn fail(&mut self, what: String) {
        eprintln!("bench: FAILED: {what}");
        self.record.failures.push(what);
        let _ = self.save();
    }

    /// [`Ctx::step`], its error recorded as a failure of `what`: the run
    /// goes on.
    fn step_or_fail(
        &mut self,
        phase: &str,
        name: &str,
        what: &str,
        f: impl FnOnce(&mut Self) -> anyhow::Result<()>,
    ) {
        if let Err(e) = self.step(phase, name, f) {
            self.fail(format!("{what}: {e:#}"));
        }
    }

    fn step<T>(
        &mut self,
        phase: &str,
        name: &str,
        f: impl FnOnce(&mut Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        eprintln!(
            "\n==> [{phase}] {name}  (t+{:.0}s)",
            self.started.elapsed().as_secs_f64()
        );
        let sampler = self.record.broker.pid.and_then(ProcSampler::start);
        let t = Instant::now();
        let result = f(self);
        let seconds = t.elapsed().as_secs_f64();
        let broker = sampler.and_then(ProcSampler::finish);
        eprintln!(
            "    [{phase}] {} in {seconds:.1}s",
            if result.is_ok() { "done" } else { "FAILED" }
        );
        self.record.steps.push(Step {
            phase: phase.into(),
            name: name.into(),
            seconds,
            ok: result.is_ok(),
            broker,
        });
        let _ = self.save();
        result
    }

    /// Records a finished process; an error when it failed.
    fn finished(&mut self, phase: &str, f: &Finished) -> anyhow::Result<()> {
        self.exit_code(phase, &f.name, f.code());
        if f.ok() {
            Ok(())
        } else {
            bail!("{}", f.failure())
        }
    }

    fn exit_code(&mut self, phase: &str, name: &str, code: i32) {
        let key = format!("{phase}/{name}");
        self.record.exit_codes.insert(key, code);
        let _ = self.save();
    }

    fn record_db(&mut self, phase: &str, model: &str, db: &Path) {
        self.record
            .db_bytes
            .insert(format!("{phase}/{model}.db"), db_bytes(db));
    }

    fn verify_phase(&mut self, phase: &str, dir: &Path) -> anyhow::Result<()> {
        let checks = verify::phase_in_child(dir, Duration::from_secs(3600))?;
        let verdict = verify::verdict(&checks);
        eprintln!("    [{phase}] verification {verdict}");
        self.checks.extend(checks);
        self.save()?;
        Ok(())
    }
}

/// Runs `bench SUBCOMMAND` (this very binary) with `args` in a process of
/// its own, logged to `dir/{name}.log`.
pub(crate) fn bench_child<T: clap::Args + Serialize>(
    dir: &Path,
    name: &str,
    subcommand: &str,
    args: &T,
    limit: Duration,
) -> anyhow::Result<Finished> {
    let exe = std::env::current_exe().context("cannot locate the bench binary")?;
    let argv_: Vec<OsString> = std::iter::once(subcommand.into())
        .chain(argv(args)?)
        .collect();
    let log = dir.join(format!("{name}.log"));
    Proc::spawn_echoed(&exe, &argv_, &log, name)?.finish_within(limit)
}

/// `(YYYY-MM-DDTHH:MM:SSZ, YYYYMMDD-HHMMSS)` in UTC.
pub fn utc(t: SystemTime) -> (String, String) {
    let t = chrono::DateTime::<chrono::Utc>::from(t);
    let f = |format: &str| t.format(format).to_string();
    (f("%Y-%m-%dT%H:%M:%SZ"), f("%Y%m%d-%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn utc_formatting() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_500_000);
        assert_eq!(utc(t).0, "2026-11-24T06:00:00Z");
        assert_eq!(utc(UNIX_EPOCH).1, "19700101-000000");
    }
}
