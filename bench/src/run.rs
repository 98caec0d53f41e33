//! `bench run`: the phases, in order, each step timed and recorded in
//! `run.json` as it completes, then the report.
//!
//! Layout of the output directory:
//!
//! ```text
//! run.json            what was run, where, each step's duration
//! verification.json   every check
//! queries.json        the two store queries on backlog/pull.db
//! results.json        all figures (what report.md is drawn from)
//! report.md, *.svg    the report
//! backlog/            producer.json, producer-raw-{before,after}.json, pull.json, push.json,
//!                     pull.db, push.db, raw-consume.json,
//!                     store-insert-{before,after}.json, *.log
//! live-<rate>/        producer.json, pull.json, push.json, pull.db, push.db,
//!                     pull.ready, push.ready, *.log
//! ```
//!
//! Every process is started with arguments built from the run's
//! [`Settings`] (see [`crate::settings`]); the live producer starts once
//! both consumers have written their ready files (`--ready-file`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use consumer_core::Model;
use consumer_core::ready::Ready;
use serde::Serialize;

use crate::argv::argv;
use crate::ceilings::{db_bytes, remove_db};
use crate::cli::{CheckPhaseArgs, QueryArgs, RunArgs};
use crate::machine::{BrokerInfo, Machine, ProcSampler};
use crate::procs::{self, Finished};
use crate::results::{Results, RunConfig, RunRecord, Step};
use crate::settings::{ConsumerJob, Settings};
use crate::stats::{ConsumerStats, ProducerStats, STATS_VERSION, read_json};
use crate::verify::{self, Check};
use crate::{plots, queries, report, topics};

/// The binaries a run starts.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `producer`.
    pub producer: PathBuf,
    /// `consumer-pull`.
    pub pull: PathBuf,
    /// `consumer-push`.
    pub push: PathBuf,
    /// This binary, for the ceilings.
    pub bench: PathBuf,
}

impl Bins {
    /// Finds the three pipeline binaries in `dir`; says which are missing
    /// and how to build them.
    pub fn locate(dir: &Path) -> anyhow::Result<Bins> {
        let bench = std::env::current_exe().context("cannot locate the bench binary")?;
        let bins = Bins {
            producer: dir.join("producer"),
            pull: dir.join("consumer-pull"),
            push: dir.join("consumer-push"),
            bench,
        };
        let missing: Vec<String> = [&bins.producer, &bins.pull, &bins.push]
            .into_iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "missing binaries: {}. Build them with `cargo build --release -p producer \
                 -p consumer-pull -p consumer-push -p bench` (scripts/bench.sh does) or \
                 point --bin-dir / BIN_DIR at a directory that has them",
                missing.join(", ")
            );
        }
        Ok(bins)
    }
}

struct Ctx<'a> {
    args: &'a RunArgs,
    settings: &'a Settings,
    out: PathBuf,
    bins: Bins,
    record: RunRecord,
    checks: Vec<Check>,
    started: Instant,
    run_id: String,
}

/// Runs the benchmark; the exit code is non-zero on any failed check or
/// failed step.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let started_at = SystemTime::now();
    let (iso, compact) = utc(started_at);
    let settings = &args.settings;
    settings.check()?;
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.results.join(&compact));
    prepare_out_dir(&out)?;
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    let bins = Bins::locate(&bin_dir)?;
    let rates = args.live_rates();
    let run_id = format!("bench.{compact}.{}", std::process::id());
    let events = if args.skip_backlog { 0 } else { args.events };

    let record = RunRecord {
        version: STATS_VERSION,
        command: args
            .command_line
            .clone()
            .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        started_at: iso,
        finished_at: String::new(),
        wall_seconds: 0.0,
        config: RunConfig {
            events,
            rates: rates.clone(),
            duration_s: args.duration,
            warmup_s: args.warmup,
            run_id: run_id.clone(),
            settings: settings.clone(),
            saturation_p99_ms: args.saturation.then_some(args.saturation_p99_ms),
        },
        machine: Machine::probe(),
        broker: BrokerInfo::from_run_dir(args.broker_run_dir.as_deref(), &settings.brokers),
        steps: Vec::new(),
        db_bytes: Default::default(),
        exit_codes: Default::default(),
        failures: Vec::new(),
        orchestrator_max_rss_bytes: 0,
    };
    let mut ctx = Ctx {
        args,
        settings,
        out: out.clone(),
        bins,
        record,
        checks: Vec::new(),
        started: Instant::now(),
        run_id,
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
    // some load: Apache Kafka's JVM spent 1.2 cores compiling through the
    // first live phase of a run that did not warm it up (p50 at 2k/s 14.6
    // ms), and on the embedded broker the first of two identical runs was the
    // slower one.
    // Warm it up on a throw-away topic before anything is measured.
    if !(args.skip_backlog && rates.is_empty()) {
        let warm = args.events.clamp(1, 1_000_000);
        let dir = out.join("warm-up");
        std::fs::create_dir_all(&dir)?;
        let r = ctx.step(
            "warm-up",
            &format!("broker warm-up: {warm} events to a throw-away topic"),
            |ctx| raw_to_throwaway_topic(ctx, &dir, "producer-warm-up", warm).map(drop),
        );
        if let Err(e) = r {
            ctx.fail(format!("broker warm-up: {e:#}"));
        }
    }

    // On the embedded broker (Nisshi) the live phases come first: its
    // in-memory engine slows down as it holds more; after a 2M-event backlog
    // Nisshi 0.8.1 gave p99 2.2-2.4 s at 20k/s. A property of that broker,
    // not of either consumer.
    // Apache Kafka indexes its log and does not slow down as it fills, but
    // its JVM keeps compiling through the first minute of load: after only
    // the warm-up above it still took a core at 2k/s (p50 9.6-9.8 ms, against
    // 5-6 ms on a broker that had run for minutes), so there the backlog
    // phase comes first and the live phases meet a broker in steady state.
    let live_first = ctx.record.broker.kind == "nisshi";
    let live_phases = |ctx: &mut Ctx<'_>| {
        for &rate in &rates {
            if let Err(e) = live(ctx, rate) {
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
        // The live code paths (many small produce and fetch requests, fetches
        // parked until data arrives) are compiled only once live load
        // starts: without this, Kafka's C2 compiler threads took about a
        // quarter of a core through every live phase, on a 2-core machine
        // shared with the producer and both consumers. One unmeasured live
        // step at the middle rate first (`warm-up-live-<rate>`, verified
        // like the others, left out of the results).
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
    Ok(
        if results.verification == "PASS" && ctx.record.failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// Gathers the figures of `dir` and writes results.json, the pictures and
/// report.md.
pub fn write_report(dir: &Path) -> anyhow::Result<Results> {
    let results = Results::collect(dir)?;
    let pictures = match plots::draw_all(&results, dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench: warning: pictures not drawn: {e:#}");
            Vec::new()
        }
    };
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

fn prepare_out_dir(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let mut entries =
            std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} exists and is not empty; give a new --out directory",
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))
}

impl Ctx<'_> {
    fn save(&self) -> anyhow::Result<()> {
        common::stats::write_json(&self.out.join("run.json"), &self.record)
            .context("cannot write run.json")?;
        common::stats::write_json(&self.out.join("verification.json"), &self.checks)
            .context("cannot write verification.json")
    }

    fn fail(&mut self, what: String) {
        eprintln!("bench: FAILED: {what}");
        self.record.failures.push(what);
        let _ = self.save();
    }

    /// Runs one step: announces it, times it, records it.
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

    fn topic(&self, phase: &str) -> String {
        format!("{}.{phase}", self.run_id)
    }

    /// Runs the producer (`name` in `dir`: `{name}.json`, `{name}.log`).
    fn producer(
        &self,
        dir: &Path,
        name: &str,
        topic: &str,
        count: u64,
        rate: u64,
        raw: bool,
    ) -> anyhow::Result<Finished> {
        let stats = dir.join(format!("{name}.json"));
        let args = argv(&self.settings.producer(topic, count, rate, &stats, raw))?;
        let log = dir.join(format!("{name}.log"));
        procs::run(
            name,
            &self.bins.producer,
            &args,
            &log,
            producer_limit(count, rate),
        )
    }

    /// Starts a consumer; its files in `dir` are named after its model.
    fn consumer(
        &self,
        model: Model,
        dir: &Path,
        job: &ConsumerJob<'_>,
    ) -> anyhow::Result<procs::Running> {
        let bin = match model {
            Model::Pull => &self.bins.pull,
            Model::Push => &self.bins.push,
        };
        let args = self.settings.consumer_argv(model, job)?;
        let log = dir.join(format!("{}.log", model.name()));
        procs::spawn(model.name(), bin, &args, &log)
    }

    /// Runs `bench SUBCOMMAND` with `args` in a process of its own.
    fn bench<T: clap::Args + Serialize>(
        &self,
        name: &str,
        subcommand: &str,
        args: &T,
        log: &Path,
        limit: Duration,
    ) -> anyhow::Result<Finished> {
        let mut argv_ = vec![OsString::from(subcommand)];
        argv_.extend(argv(args)?);
        procs::run(name, &self.bins.bench, &argv_, log, limit)
    }

    /// Records a finished process; an error when it failed.
    fn finished(&mut self, phase: &str, f: &Finished) -> anyhow::Result<()> {
        self.record
            .exit_codes
            .insert(format!("{phase}/{}", f.name), f.code());
        let _ = self.save();
        if f.ok() {
            Ok(())
        } else {
            bail!("{}", f.failure())
        }
    }

    fn record_db(&mut self, phase: &str, model: &str, db: &Path) {
        self.record
            .db_bytes
            .insert(format!("{phase}/{model}.db"), db_bytes(db));
    }

    /// Verifies a phase in a child process (`bench check-phase`): a summary
    /// scan of a large database grows SQLite's page cache, and every process
    /// started afterwards would inherit that peak in its own `ru_maxrss`
    /// (Linux carries the high-water mark across fork and exec). Keeping the
    /// orchestrator small keeps the children's peak RSS their own.
    fn verify_phase(&mut self, phase: &str, dir: &Path) -> anyhow::Result<()> {
        let json = dir.join("checks.json");
        let args = CheckPhaseArgs {
            dir: dir.to_path_buf(),
            json: json.clone(),
        };
        let f = self.bench(
            "verify",
            "check-phase",
            &args,
            &dir.join("verify.log"),
            Duration::from_secs(3600),
        )?;
        if !f.ok() {
            bail!("{}", f.failure());
        }
        let checks = verify::read_checks(&json)?;
        let verdict = verify::verdict(&checks);
        eprintln!("    [{phase}] verification {verdict}");
        self.checks.extend(checks);
        self.save()?;
        Ok(())
    }

    fn create_topic(&self, topic: &str) -> anyhow::Result<()> {
        topics::create(&self.settings.brokers, topic, self.settings.partitions)?;
        eprintln!(
            "    topic {topic} created with {} partitions",
            self.settings.partitions
        );
        Ok(())
    }
}

/// Generous limits: a stuck process must not hang the run forever, but a
/// slow machine must not be cut short either.
fn producer_limit(count: u64, rate: u64) -> Duration {
    let expected = count.checked_div(rate).unwrap_or(count / 20_000);
    Duration::from_secs(300 + expected * 2)
}

fn drain_limit(count: u64) -> Duration {
    Duration::from_secs(300 + count / 5_000)
}

/// `producer --raw` with `count` events into a throw-away topic, deleted
/// afterwards whatever happened; stats and log in `dir` as `{name}.json`
/// and `{name}.log`.
fn raw_to_throwaway_topic(
    ctx: &Ctx<'_>,
    dir: &Path,
    name: &str,
    count: u64,
) -> anyhow::Result<Finished> {
    let topic = ctx.topic(name);
    ctx.create_topic(&topic)?;
    let f = ctx.producer(dir, name, &topic, count, 0, true);
    topics::delete(&ctx.settings.brokers, &topic);
    f
}

fn backlog(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let phase = "backlog";
    let n = ctx.args.events;
    let dir = ctx.out.join(phase);
    std::fs::create_dir_all(&dir)?;
    let topic = ctx.topic(phase);
    let skip_ceilings = ctx.args.skip_ceilings;

    // The producer's raw ceiling is measured in two halves, one right before
    // the producer and one right after, each on a throw-away topic deleted
    // at once: the broker drifts as it fills (an in-memory engine slows
    // down), and a ceiling taken on one side only would favour or handicap
    // the producer by that drift.
    let raw_half = |ctx: &mut Ctx<'_>, name: &str, count: u64| {
        if skip_ceilings || count == 0 {
            return;
        }
        let r = ctx.step(
            phase,
            &format!("producer --raw: raw ceiling, {count} pre-encoded events to a throw-away topic ({name})"),
            |ctx| {
                let f = raw_to_throwaway_topic(ctx, &dir, name, count)?;
                ctx.finished(phase, &f)?;
                let p: ProducerStats = read_json(&dir.join(format!("{name}.json")))?;
                eprintln!("    raw ceiling {:.0} events/s", p.events_per_second);
                Ok(())
            },
        );
        if let Err(e) = r {
            ctx.fail(format!("producer raw ceiling ({name}): {e:#}"));
        }
    };
    raw_half(ctx, "producer-raw-before", n / 2);

    let produced: ProducerStats = ctx.step(
        phase,
        &format!("producer writes {n} events as fast as it can"),
        |ctx| {
            ctx.create_topic(&topic)?;
            let f = ctx.producer(&dir, "producer", &topic, n, 0, false)?;
            ctx.finished(phase, &f)?;
            let p: ProducerStats = read_json(&dir.join("producer.json"))?;
            eprintln!(
                "    acknowledged {} events in {:.2}s: {:.0} events/s",
                p.events_acknowledged, p.wall_seconds, p.events_per_second
            );
            Ok(p)
        },
    )?;
    let acked = produced.events_acknowledged;

    raw_half(ctx, "producer-raw-after", n - n / 2);
    if !skip_ceilings {
        if let Some(raw) = crate::results::RawProducer::read(&dir)? {
            eprintln!(
                "    raw ceiling over both halves {:.0} events/s; the producer reached {:.0}% of it",
                raw.events_per_second,
                100.0 * produced.events_per_second / raw.events_per_second.max(1e-9)
            );
        }
    }

    // The store's insert ceiling, like the producer's, is measured in two
    // halves into one scratch database: the first half right before the
    // drains, the second (continuing it) right after them, so that the
    // machine's drift (it is shared) weighs on both sides alike. Measured
    // once after the drains, it came out 5-9% below a consumer that had
    // just stored the same events, while alone it measured 10-20% above.
    //
    // The bare-SQLite ceiling (the same rows into one table with one
    // b-tree, nothing else) is measured the same way, its halves inside the
    // store's: store, bare, drains, bare, store.
    let scratch = dir.join("store-ceiling.db");
    let bare_scratch = dir.join("bare-ceiling.db");
    let first_id = produced.first_event_id.max(1);
    let store_half = |ctx: &mut Ctx<'_>, name: &str, count: u64, skip: u64| {
        if skip_ceilings || count == 0 {
            return;
        }
        let bare = name.starts_with("bare-");
        let (db, subcommand, what) = if bare {
            (&bare_scratch, "ceiling-bare", "bare SQLite insert")
        } else {
            (&scratch, "ceiling-store", "store insert")
        };
        let r = ctx.step(
            phase,
            &format!("ceiling: {what} of {count} of the same events, no Kafka ({name})"),
            |ctx| {
                if skip == 0 {
                    remove_db(db);
                }
                let stats = dir.join(format!("{name}.json"));
                let args = ctx
                    .settings
                    .store_ceiling(db, count, skip, first_id, &stats);
                let log = dir.join(format!("{name}.log"));
                let f = ctx.bench(name, subcommand, &args, &log, drain_limit(count))?;
                ctx.finished(phase, &f)
            },
        );
        if let Err(e) = r {
            ctx.fail(format!("{what} ceiling ({name}): {e:#}"));
        }
    };
    store_half(ctx, "store-insert-before", n / 2, 0);
    store_half(ctx, "bare-sqlite-before", n / 2, 0);

    for model in Model::ALL {
        let name = model.name();
        let r = ctx.step(
            phase,
            &format!("consumer-{name} drains {acked} events alone into {phase}/{name}.db"),
            |ctx| {
                let group = format!("{}.{name}.{phase}", ctx.run_id);
                let job = ConsumerJob {
                    topic: &topic,
                    group: &group,
                    db: dir.join(format!("{name}.db")),
                    stats: dir.join(format!("{name}.json")),
                    ready: None,
                    max_events: acked,
                    idle_s: 5,
                };
                let f = ctx.consumer(model, &dir, &job)?.wait(drain_limit(acked))?;
                ctx.record_db(phase, name, &job.db);
                ctx.finished(phase, &f)?;
                let s: ConsumerStats = read_json(&job.stats)?;
                eprintln!(
                    "    {name}: {} events in {:.2}s: {:.0} events/s, CPU {:.1}s, peak RSS {:.0} MB",
                    s.events_committed,
                    s.wall_seconds,
                    s.events_per_second,
                    s.cpu_seconds,
                    s.max_rss_bytes as f64 / 1e6
                );
                Ok(())
            },
        );
        if let Err(e) = r {
            ctx.fail(format!("consumer-{name} backlog drain: {e:#}"));
        }
    }

    if !skip_ceilings {
        let r = ctx.step(
            phase,
            "ceiling: raw consume (BaseConsumer, consumers' settings, fresh group, decode only)",
            |ctx| {
                let group = format!("{}.raw-consume", ctx.run_id);
                let stats = dir.join("raw-consume.json");
                let args = ctx.settings.raw_consume(&topic, &group, acked, &stats);
                let log = dir.join("raw-consume.log");
                let f = ctx.bench(
                    "raw-consume",
                    "ceiling-consume",
                    &args,
                    &log,
                    drain_limit(acked),
                )?;
                ctx.finished(phase, &f)
            },
        );
        if let Err(e) = r {
            ctx.fail(format!("raw consume ceiling: {e:#}"));
        }
        store_half(ctx, "bare-sqlite-after", n - n / 2, n / 2);
        store_half(ctx, "store-insert-after", n - n / 2, n / 2);
        if !ctx.args.keep_scratch_db {
            remove_db(&scratch);
            remove_db(&bare_scratch);
        }
    }
    topics::delete(&ctx.settings.brokers, &topic);

    ctx.step(phase, "verification of pull.db and push.db", |ctx| {
        ctx.verify_phase(phase, &dir)
    })?;

    let pull_db = dir.join("pull.db");
    if pull_db.is_file() {
        let r = ctx.step(
            phase,
            "store queries on pull.db (after ensure_query_index)",
            |ctx| {
                // A child process, for the same reason as the verification.
                let json = ctx.out.join("queries.json");
                let args = QueryArgs {
                    db: pull_db.clone(),
                    accounts: ctx.settings.accounts,
                    samples: ctx.args.query_samples,
                    stats_json: Some(json.clone()),
                };
                let log = dir.join("queries.log");
                let f = ctx.bench("queries", "queries", &args, &log, Duration::from_secs(3600))?;
                ctx.finished(phase, &f)?;
                let q: queries::QueryStats = read_json(&json)?;
                eprintln!(
                    "    index built in {:.1}s; 50 latest events p99 {:.3} ms; balance p99 {:.3} ms",
                    q.index_build_seconds, q.latest_events_50.p99_ms, q.account_balance.p99_ms
                );
                Ok(())
            },
        );
        if let Err(e) = r {
            ctx.fail(format!("store queries: {e:#}"));
        }
    }
    Ok(())
}

fn live(ctx: &mut Ctx<'_>, rate: u64) -> anyhow::Result<()> {
    live_phase(ctx, "live", rate)
}

/// The saturation sweep: live steps (`saturation-<rate>`) at offered rates
/// doubling from `--saturation-start`, while at least one consumer keeps
/// pace ([`crate::results::keeps_pace`]; a p99 above the bound alone does
/// not end the sweep, so the picture shows latency across the whole
/// range) and the producer can offer the rate.
fn saturation(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let bound = args.saturation_p99_ms;
    let mut rate = args.saturation_start;
    let mut holding = [true, true];
    while rate <= args.saturation_max {
        if let Err(e) = live_phase(ctx, "saturation", rate) {
            ctx.fail(format!("saturation step at {rate}/s: {e:#}"));
            break;
        }
        let step = match live_step(ctx, rate) {
            Ok(s) => s,
            Err(e) => {
                ctx.fail(format!("saturation step at {rate}/s: {e:#}"));
                break;
            }
        };
        let mut said = Vec::new();
        for (i, (model, f)) in [("pull", step.pull.as_ref()), ("push", step.push.as_ref())]
            .into_iter()
            .enumerate()
        {
            holding[i] = holding[i] && crate::results::keeps_pace(&step, f);
            let verdict = if !crate::results::offered(&step) {
                "not offered the rate".to_string()
            } else if crate::results::sustains(&step, f, bound) {
                "sustains it".to_string()
            } else if holding[i] {
                format!("keeps pace, p99 above {bound} ms")
            } else {
                "falls behind".to_string()
            };
            said.push(format!("{model} {verdict}"));
        }
        eprintln!(
            "    saturation at {rate}/s: producer {:.0}/s; {}",
            step.producer_events_per_second,
            said.join(", ")
        );
        if !crate::results::offered(&step) {
            eprintln!("    the producer could not offer {rate}/s: the sweep ends here");
            break;
        }
        if !holding.iter().any(|h| *h) {
            break;
        }
        rate = rate.saturating_mul(2);
    }
}

/// The figures of one finished saturation step, read from its directory.
fn live_step(ctx: &Ctx<'_>, rate: u64) -> anyhow::Result<crate::results::LiveResult> {
    let dir = ctx.out.join(format!("saturation-{rate}"));
    let p: ProducerStats = read_json(&dir.join("producer.json"))?;
    let figures = |model: &str| -> Option<crate::results::Figures> {
        let s: ConsumerStats = read_json(&dir.join(format!("{model}.json"))).ok()?;
        let phase = format!("saturation-{rate}");
        Some(crate::results::Figures {
            events: s.events_committed,
            wall_seconds: s.wall_seconds,
            events_per_second: s.events_per_second,
            latency_us: s.latency_us,
            verification: verify::verdict_of(&ctx.checks, &phase, model).into(),
            ..Default::default()
        })
    };
    Ok(crate::results::LiveResult {
        rate,
        duration_s: ctx.args.duration,
        produced: p.events_acknowledged,
        producer_events_per_second: p.events_per_second,
        pull: figures("pull"),
        push: figures("push"),
        ..Default::default()
    })
}

/// One live phase, `{prefix}-{rate}`: both consumers live in fresh groups
/// while the producer emits `rate` events/s for `--duration` seconds.
fn live_phase(ctx: &mut Ctx<'_>, prefix: &str, rate: u64) -> anyhow::Result<()> {
    let phase = format!("{prefix}-{rate}");
    let dir = ctx.out.join(&phase);
    std::fs::create_dir_all(&dir)?;
    let topic = ctx.topic(&phase);
    let duration = ctx.args.duration;
    let warmup = ctx.args.warmup;
    let count = (rate * duration).max(1);
    let r = ctx.step(
        &phase,
        &format!(
            "both consumers live while the producer emits {rate} events/s for {duration} s ({count} events)"
        ),
        |ctx| {
            ctx.create_topic(&topic)?;
            // Idle must outlast the warm-up: the consumers see an empty,
            // drained topic until the producer starts.
            let idle = warmup + 15;
            let mut running = Vec::new();
            let mut ready = Vec::new();
            for model in Model::ALL {
                let name = model.name();
                let group = format!("{}.{name}.{phase}", ctx.run_id);
                let job = ConsumerJob {
                    topic: &topic,
                    group: &group,
                    db: dir.join(format!("{name}.db")),
                    stats: dir.join(format!("{name}.json")),
                    ready: Some(dir.join(format!("{name}.ready"))),
                    max_events: count,
                    idle_s: idle,
                };
                let consumer = ctx.consumer(model, &dir, &job)?;
                ready.push((job.ready.expect("set above"), consumer.id()));
                running.push(consumer);
            }
            eprintln!(
                "    consumers started; the producer starts once both are ready (at most {warmup} s)"
            );
            let until = Instant::now() + Duration::from_secs(warmup);
            while Instant::now() < until {
                if let Some(r) = running.iter_mut().find_map(|r| r.has_exited().then_some(r)) {
                    eprintln!("    {} exited during the warm-up", r.name());
                    break;
                }
                let is_ready =
                    |(file, pid): &(PathBuf, u32)| Ready::read(file).is_some_and(|r| r.pid == *pid);
                if ready.iter().all(is_ready) {
                    // Let them send their first fetch before the first
                    // event exists.
                    std::thread::sleep(READY_MARGIN);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let produced = ctx.producer(&dir, "producer", &topic, count, rate, false);
            let limit = Duration::from_secs(warmup + duration + 180);
            let mut errors = Vec::new();
            let produced = match produced {
                Ok(f) => Some(f),
                Err(e) => {
                    errors.push(format!("{e:#}"));
                    None
                }
            };
            let producer_ok = produced.as_ref().is_some_and(Finished::ok);
            for r in running {
                // Without a producer nothing will arrive: stop them now.
                let f = if producer_ok {
                    r.wait(limit)?
                } else {
                    r.stop()?
                };
                let name = f.name.clone();
                ctx.record_db(&phase, &name, &dir.join(format!("{name}.db")));
                if let Err(e) = ctx.finished(&phase, &f) {
                    errors.push(format!("{e:#}"));
                }
            }
            if let Some(f) = &produced
                && let Err(e) = ctx.finished(&phase, f)
            {
                errors.push(format!("{e:#}"));
            }
            for model in verify::MODELS {
                if let Ok(s) = read_json::<ConsumerStats>(&dir.join(format!("{model}.json"))) {
                    let ms = |us: u64| us as f64 / 1e3;
                    let l = s.latency_us;
                    eprintln!(
                        "    {model}: {} events, latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
                        s.events_committed,
                        ms(l.p50),
                        ms(l.p99),
                        ms(l.p999),
                        ms(l.max)
                    );
                }
            }
            if errors.is_empty() {
                Ok(())
            } else {
                bail!("{}", errors.join("; "))
            }
        },
    );
    topics::delete(&ctx.settings.brokers, &topic);
    if dir.join("producer.json").is_file() {
        ctx.step(&phase, "verification of pull.db and push.db", |ctx| {
            ctx.verify_phase(&phase, &dir)
        })?;
    }
    r
}

/// `(YYYY-MM-DDTHH:MM:SSZ, YYYYMMDD-HHMMSS)` in UTC.
pub fn utc(t: SystemTime) -> (String, String) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
        format!("{y:04}{mo:02}{d:02}-{h:02}{m:02}{s:02}"),
    )
}

/// After both consumers are ready (partitions assigned and positioned):
/// time for their first fetches, before the live producer starts.
const READY_MARGIN: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_500_000);
        assert_eq!(utc(t).0, "2026-11-24T06:00:00Z");
        assert_eq!(utc(UNIX_EPOCH).1, "19700101-000000");
    }
}
