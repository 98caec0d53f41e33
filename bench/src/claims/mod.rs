//! `bench claims` (`scripts/bench.sh --claims`): each claim commonly made
//! about push against pull, tested by an experiment ([`experiments`],
//! `--only`) made of [`phase`]s on one broker. [`analysis`] turns them into
//! figures and verdicts ([`verdict`]: the noise is the spread between two
//! measurements of the same thing); [`report`] and [`plots`] write
//! `claims.md` next to `claims.json`. The claims, their experiments and
//! what "push" is here: `docs/benchmark.md`, "Push or pull, answered".

pub mod analysis;
pub mod experiments;
pub mod plots;
pub mod report;
pub mod verdict;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::cli::Common;
use crate::machine::{BrokerInfo, Machine};
use crate::phase::{self, Env, PhaseRun, PhaseSpec};
use crate::run::utc;
use crate::settings::Settings;
use crate::verify;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Experiment {
    /// Latency and CPU per event at steady rates.
    Latency,
    /// CPU with nothing to consume.
    Idle,
    /// Bursts of events with pauses between them.
    Burst,
    /// A step up in rate and back down.
    Step,
    /// A slow sink.
    Slow,
    /// 1, 2 and 3 instances per model in one group.
    Scale,
    /// The producer while no consumer runs.
    Outage,
}

#[derive(Debug, Clone, Args)]
pub struct ClaimsArgs {
    #[command(flatten)]
    pub common: Common,

    /// Experiments to run (default: all), comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Experiment>,

    /// Steady rates of the latency experiment, events/s.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,10,100,2000,20000,100000"
    )]
    pub rates: Vec<u64>,

    /// Seconds the producer emits at each steady rate.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,

    /// Runs of the latency, burst, step and slow-sink experiments: their
    /// spread is the noise the verdicts compare against.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=10))]
    pub repeats: u64,

    /// Seconds with both consumers ready and nothing sent (idle CPU).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub idle_seconds: u64,

    /// The scale-out: events in the backlog each group drains.
    #[arg(long, default_value_t = 1_000_000)]
    pub scale_events: u64,

    /// The scale-out: instance counts, in order (1 twice: the noise).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,1")]
    pub scale_instances: Vec<usize>,

    /// The outage: rate the producer offers while no consumer runs.
    #[arg(long, default_value_t = 20_000)]
    pub outage_rate: u64,

    /// The outage: seconds.
    #[arg(long, default_value_t = 10)]
    pub outage_seconds: u64,

    /// Skip the unmeasured warm-up phase (20k events/s for 5 s).
    #[arg(long)]
    pub skip_warmup: bool,
}

impl ClaimsArgs {
    pub fn experiments(&self) -> Vec<Experiment> {
        if self.only.is_empty() {
            Experiment::value_variants().to_vec()
        } else {
            self.only.clone()
        }
    }
}

/// Everything a claims run measured: `claims.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClaimsRun {
    pub command: String,
    pub started_at: String,
    pub finished_at: String,
    pub wall_seconds: f64,
    /// `/proc/loadavg`.
    pub load_before: String,
    pub load_after: String,
    pub machine: Machine,
    pub broker: BrokerInfo,
    pub settings: Settings,
    pub options: Options,
    /// The warm-up included.
    pub phases: Vec<PhaseRun>,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Options {
    pub rates: Vec<u64>,
    pub duration: u64,
    pub repeats: u64,
    pub idle_seconds: u64,
    /// Rate, seconds, gap, bursts.
    pub burst: (u64, u64, f64, u64),
    pub step: (Vec<u64>, u64),
    /// Batch size, rate, seconds.
    pub slow: (usize, u64, u64),
    pub scale: (u64, Vec<usize>),
    pub outage: (u64, u64),
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Non-zero exit on any failed check or phase.
pub fn run(args: &ClaimsArgs) -> anyhow::Result<ExitCode> {
    let Some(start) = args.common.start("claims-", "claims")? else {
        return Ok(ExitCode::SUCCESS);
    };
    let (started, a) = (Instant::now(), args);
    let mut record = ClaimsRun {
        command: start.command,
        started_at: start.iso,
        load_before: loadavg(),
        machine: Machine::probe(),
        broker: start.broker,
        settings: args.common.settings.clone(),
        options: Options {
            rates: a.rates.clone(),
            duration: a.duration,
            repeats: a.repeats,
            idle_seconds: a.idle_seconds,
            burst: experiments::BURST,
            step: (experiments::STEP.0.to_vec(), experiments::STEP.1),
            slow: experiments::SLOW,
            scale: (a.scale_events, a.scale_instances.clone()),
            outage: (a.outage_rate, a.outage_seconds),
        },
        ..Default::default()
    };
    let env = start.env;
    let out = &env.out;
    eprintln!(
        "bench claims: output in {}; broker {} ({} {}); load {}",
        out.display(),
        record.broker.address,
        record.broker.kind,
        record.broker.version,
        record.load_before
    );
    let mut next_id = 1u64;
    let specs = args.experiments().into_iter();
    let specs = specs.flat_map(|e| experiments::specs(e, args));
    let warm_up = (!args.skip_warmup).then(experiments::warm_up);
    for spec in warm_up.into_iter().chain(specs) {
        match run_phase(&env, &spec, &mut next_id) {
            Ok(p) => {
                record.failures.extend(p.failures.iter().cloned());
                if p.verification != "PASS" {
                    let failed = format!("{}: verification {}", p.name, p.verification);
                    record.failures.push(failed);
                }
                record.phases.push(p);
            }
            Err(e) => {
                eprintln!("bench claims: FAILED: {}: {e:#}", spec.name);
                record.failures.push(format!("{}: {e:#}", spec.name));
            }
        }
        common::stats::write_json(&out.join("claims.json"), &record)?;
    }
    record.finished_at = utc(SystemTime::now()).0;
    record.wall_seconds = started.elapsed().as_secs_f64();
    record.load_after = loadavg();
    common::stats::write_json(&out.join("claims.json"), &record)?;
    let table = write_report(out)?;
    println!("\n{table}");
    for f in &record.failures {
        println!("failure: {f}");
    }
    let checks: usize = record.phases.iter().map(|p| p.checks.len()).sum();
    // A phase not verified is a failure too.
    let pass = record.failures.is_empty();
    println!(
        "claims finished in {:.0} s; verification {} ({checks} checks over {} phases); load {} -> {}; report: {}",
        record.wall_seconds,
        if pass { "PASS" } else { "FAIL" },
        record.phases.len(),
        record.load_before,
        record.load_after,
        out.join("claims.md").display()
    );
    Ok(crate::cli::exit_code(pass))
}

fn run_phase(env: &Env, spec: &PhaseSpec, next_id: &mut u64) -> anyhow::Result<PhaseRun> {
    let started = Instant::now();
    let after = spec
        .consumers_after_producer
        .then_some(", consumers started after the producer");
    eprintln!(
        "\n==> [claims] {}: {} events in {} segment(s); {} x {:?}{}",
        spec.name,
        spec.events(),
        spec.segments.len(),
        spec.instances,
        spec.models.iter().map(|m| m.name()).collect::<Vec<_>>(),
        after.unwrap_or_default()
    );
    let first_id = *next_id;
    *next_id += spec.events();
    let mut run = phase::run(env, spec, first_id)?;
    if !spec.consumers_after_producer
        && spec.instances == 1
        && run.consumers.iter().any(|c| c.ready_s.is_none())
    {
        run.failures.push(format!(
            "{}: not every consumer was assigned partitions within {} s",
            spec.name,
            spec.ready_wait.as_secs()
        ));
    }
    let dir = env.out.join(&spec.name);
    run.checks = phase::verify(spec, &dir, &run.producer)?;
    run.verification = verify::verdict(&run.checks).to_string();
    run.seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "    [claims] {}: verification {} ({} checks) in {:.0} s",
        spec.name,
        run.verification,
        run.checks.len(),
        run.seconds
    );
    for c in run.checks.iter().filter(|c| !c.pass) {
        eprintln!("    {}", c.line());
    }
    common::stats::write_json(&dir.join("phase.json"), &run)?;
    Ok(run)
}

/// Reads `claims.json` in `dir` and writes `claims.md` and the pictures;
/// returns the claims table.
pub fn write_report(dir: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(dir.join("claims.json"))
        .with_context(|| format!("cannot read {}/claims.json", dir.display()))?;
    let record: ClaimsRun =
        serde_json::from_str(&text).context("claims.json is not a claims run")?;
    let a = analysis::analyse(&record);
    let pictures = crate::plots::draw::drawn(plots::draw_all(&record, &a, dir), "bench claims");
    common::stats::write_json(&dir.join("claims-analysis.json"), &a)?;
    let md = report::render(&record, &a, &pictures);
    std::fs::write(dir.join("claims.md"), md).context("cannot write claims.md")?;
    Ok(report::claims_table(&a))
}
