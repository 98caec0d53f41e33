//! One claims phase: a fresh topic, consumers of one or both models (one
//! or more instances each, one group per model), a producer load made of
//! segments (a rate for a count of events, then a pause), a timeline
//! ([`super::sampler`]) and verification with exact counts. Every
//! experiment of `bench claims` is one or more of these.
//!
//! The producer runs once per segment (`producer-<k>.json`), each with its
//! own range of event ids; `producer.json` is their sum (counts, amount
//! sum, and the id checksum, a wrapping sum), which `bench check-phase`
//! then verifies each single-instance database against. The databases of
//! a group of several instances are verified as one with `ledger`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use consumer_core::Model;
use consumer_core::ready::Ready;
use serde::{Deserialize, Serialize};

use super::sampler::{Sample, Sampler};
use crate::argv::argv;
use crate::cli::CheckPhaseArgs;
use crate::machine::cpu_seconds;
use crate::procs::{self, Running};
use crate::settings::{ConsumerJob, Settings};
use crate::stats::{ConsumerStats, ProducerStats, read_json};
use crate::topics;
use crate::verify::{self, Check};
use testkit::Bins;

/// A stretch of the producer's load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Events.
    pub count: u64,
    /// Events per second (0: as fast as the broker takes them).
    pub rate: u64,
    /// Nothing is sent for this long after it.
    pub pause_after_s: f64,
}

/// What a phase runs.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    /// Directory and topic suffix.
    pub name: String,
    /// The models that consume, each in a group of its own.
    pub models: Vec<Model>,
    /// Instances per model in its group (separate databases).
    pub instances: usize,
    /// The producer's load.
    pub segments: Vec<Segment>,
    /// The consumers' --batch-size instead of the run's.
    pub batch_size: Option<usize>,
    /// Measured before the producer starts: nothing is sent for this long
    /// while the consumers are ready.
    pub idle_window_s: u64,
    /// Start the consumers only after the producer has finished (a
    /// consumer outage; a backlog for the scale-out).
    pub consumers_after_producer: bool,
    /// librdkafka properties for the consumers, after the run's.
    pub consumer_properties: Vec<(String, String)>,
}

impl PhaseSpec {
    /// Events the phase sends.
    pub fn events(&self) -> u64 {
        self.segments.iter().map(|s| s.count).sum()
    }
}

/// A segment as it ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SegmentRun {
    /// Offered rate (0: unpaced).
    pub rate: u64,
    /// Events asked for.
    pub count: u64,
    /// Events acknowledged.
    pub acknowledged: u64,
    /// The producer's rate over its run.
    pub events_per_second: f64,
    /// Start, on the sampler's clock.
    pub start_s: f64,
    /// End (last acknowledgement and exit), on the sampler's clock.
    pub end_s: f64,
    /// The producer's own figures: wall time from the first send to the
    /// last delivery report, and its CPU.
    pub wall_seconds: f64,
    /// The producer's CPU.
    pub cpu_seconds: f64,
    /// Delivery errors the producer reported.
    pub errors: Vec<String>,
}

/// One consumer process as it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerRun {
    /// `pull`, `push`.
    pub model: String,
    /// Its name in the phase (`pull`, `pull-2`).
    pub name: String,
    /// Its stats file.
    pub stats: ConsumerStats,
    /// Seconds from its start to its ready file (first assignment).
    pub ready_s: Option<f64>,
    /// Its CPU over each half of the idle window.
    pub idle_cpu_seconds: Option<[f64; 2]>,
    /// Its CPU from the producer's start to its exit.
    pub active_cpu_seconds: Option<f64>,
    /// Seconds from the producer's start to its exit.
    pub active_seconds: Option<f64>,
    /// Assignments and revocations its log shows (rebalances it took
    /// part in).
    pub assignments: u64,
    /// Revocations its log shows.
    pub revocations: u64,
    /// Exit code.
    pub exit_code: i32,
}

/// A phase as it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseRun {
    /// Its name.
    pub name: String,
    /// Instances per model.
    pub instances: usize,
    /// Batch size the consumers ran with.
    pub batch_size: usize,
    /// The load.
    pub segments: Vec<SegmentRun>,
    /// The producer's figures, all segments together.
    pub producer: ProducerStats,
    /// Every consumer.
    pub consumers: Vec<ConsumerRun>,
    /// Seconds of the idle window (0: none).
    pub idle_window_s: u64,
    /// The broker's CPU over each half of the idle window.
    pub broker_idle_cpu_seconds: Option<[f64; 2]>,
    /// On the sampler's clock: when the producer started, and when the
    /// consumers were started (0 unless after the producer).
    pub produce_start_s: f64,
    /// When the consumers were started, on the sampler's clock.
    pub consumers_start_s: f64,
    /// Every 250 ms: memory, CPU, lag.
    pub samples: Vec<Sample>,
    /// Verification.
    pub checks: Vec<Check>,
    /// `PASS` or `FAIL`.
    pub verification: String,
    /// Whole phase.
    pub seconds: f64,
    /// What went wrong, if anything.
    pub failures: Vec<String>,
}

impl PhaseRun {
    /// The consumers of one model.
    pub fn of(&self, model: &str) -> impl Iterator<Item = &ConsumerRun> {
        self.consumers.iter().filter(move |c| c.model == model)
    }

    /// The single consumer of a model (first instance).
    pub fn one(&self, model: &str) -> Option<&ConsumerRun> {
        self.of(model).next()
    }
}

/// What a phase needs from the run.
pub struct PhaseEnv<'a> {
    /// Settings of every process.
    pub settings: &'a Settings,
    /// Binaries.
    pub bins: &'a Bins,
    /// The run's output directory.
    pub out: &'a Path,
    /// Prefix of topics and groups.
    pub run_id: &'a str,
    /// The broker's process id, when local.
    pub broker_pid: Option<u32>,
    /// First event id not used yet in this run.
    pub next_id: &'a mut u64,
}

/// How long consumers get to be assigned their partitions.
const READY_WAIT: Duration = Duration::from_secs(30);
/// After all are ready: their first fetches, before the first event.
const READY_MARGIN: Duration = Duration::from_millis(500);
/// Several instances of a group: time for the last rebalance round.
const SETTLE: Duration = Duration::from_secs(2);

fn instance_name(model: Model, i: usize, instances: usize) -> String {
    if instances == 1 {
        model.name().to_string()
    } else {
        format!("{}-{}", model.name(), i + 1)
    }
}

/// Runs one phase; an error only when it could not run at all (a failed
/// process or check is in [`PhaseRun::failures`] / `verification`).
pub fn run_phase(env: &mut PhaseEnv<'_>, spec: &PhaseSpec) -> anyhow::Result<PhaseRun> {
    let started = Instant::now();
    let dir = env.out.join(&spec.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let topic = format!("{}.{}", env.run_id, spec.name);
    let settings = env.settings;
    let bins = env.bins;
    let broker_pid = env.broker_pid;
    topics::create(&settings.brokers, &topic, settings.partitions)?;
    eprintln!(
        "\n==> [claims] {}: {} events in {} segment(s); {} x {:?}{}",
        spec.name,
        spec.events(),
        spec.segments.len(),
        spec.instances,
        spec.models.iter().map(|m| m.name()).collect::<Vec<_>>(),
        if spec.consumers_after_producer {
            ", consumers started after the producer"
        } else {
            ""
        }
    );
    let groups: Vec<(String, String)> = spec
        .models
        .iter()
        .map(|m| {
            (
                m.name().to_string(),
                format!("{}.{}.{}", env.run_id, m.name(), spec.name),
            )
        })
        .collect();
    let batch_size = spec.batch_size.unwrap_or(settings.batch_size);
    let total = spec.events();
    let pauses: f64 = spec.segments.iter().map(|s| s.pause_after_s).sum();
    // Exit when idle: a safety net; single instances exit at --max-events.
    let idle_s = if spec.instances == 1 {
        spec.idle_window_s + pauses.ceil() as u64 + 30
    } else {
        3
    };
    let spawn_consumers = |dir: &Path| -> anyhow::Result<Vec<(Model, String, Running, Instant)>> {
        let mut running = Vec::new();
        for (model, (_, group)) in spec.models.iter().zip(&groups) {
            for i in 0..spec.instances {
                let name = instance_name(*model, i, spec.instances);
                let job = ConsumerJob {
                    topic: &topic,
                    group,
                    db: dir.join(format!("{name}.db")),
                    stats: dir.join(format!("{name}.json")),
                    ready: Some(dir.join(format!("{name}.ready"))),
                    max_events: total.max(1),
                    idle_s,
                };
                let mut args = settings.consumer(*model, &job);
                args.batch_size = batch_size;
                args.kafka
                    .properties
                    .extend(spec.consumer_properties.iter().cloned());
                if spec.instances > 1 {
                    args.max_events = None;
                    // One of several instances, each with its own
                    // database: the partitions each gets from another are
                    // hand-overs (docs/offsets.md).
                    args.scale_out = true;
                }
                let bin = bins.consumer(*model);
                let log = dir.join(format!("{name}.log"));
                let r = procs::spawn(&name, &bin, &argv(&args)?, &log)?;
                running.push((*model, name, r, Instant::now()));
            }
        }
        Ok(running)
    };

    let tracked: Arc<Mutex<Vec<(String, u32)>>> = Arc::new(Mutex::new(Vec::new()));
    if let Some(pid) = broker_pid {
        tracked.lock().expect("fresh").push(("broker".into(), pid));
    }
    let mut running = Vec::new();
    let mut ready_at: Vec<Option<f64>> = Vec::new();
    let mut failures = Vec::new();
    let wait_ready = |running: &mut Vec<(Model, String, Running, Instant)>,
                      dir: &Path,
                      ready_at: &mut Vec<Option<f64>>| {
        ready_at.clear();
        ready_at.resize(running.len(), None);
        let until = Instant::now() + READY_WAIT;
        while Instant::now() < until && ready_at.iter().any(Option::is_none) {
            for (k, (_, name, r, spawned)) in running.iter_mut().enumerate() {
                if ready_at[k].is_none()
                    && Ready::read(&dir.join(format!("{name}.ready")))
                        .is_some_and(|x| x.pid == r.id())
                {
                    ready_at[k] = Some(spawned.elapsed().as_secs_f64());
                }
            }
            if running.iter_mut().any(|(_, _, r, _)| r.has_exited()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    if !spec.consumers_after_producer {
        running = spawn_consumers(&dir)?;
        wait_ready(&mut running, &dir, &mut ready_at);
        if ready_at.iter().any(Option::is_none) && spec.instances == 1 {
            failures.push(format!(
                "{}: not every consumer was assigned partitions within {} s",
                spec.name,
                READY_WAIT.as_secs()
            ));
        }
        std::thread::sleep(READY_MARGIN);
        if spec.instances > 1 {
            // Cooperative rebalances finish in a second round after the
            // last instance's first assignment.
            std::thread::sleep(SETTLE);
        }
        let mut t = tracked.lock().expect("not poisoned");
        for (_, name, r, _) in &running {
            t.push((name.clone(), r.id()));
        }
    }
    let sampler = Sampler::start(
        &settings.brokers,
        &topic,
        settings.partitions,
        &groups,
        Arc::clone(&tracked),
    )?;

    // Idle: the consumers are ready, nothing is sent.
    // CPU in two halves of the window: two measurements of the same thing,
    // whose spread is the noise of the figure.
    let mut idle_cpu: Vec<Option<[f64; 2]>> = vec![None; running.len()];
    let mut broker_idle = None;
    if spec.idle_window_s > 0 && !running.is_empty() {
        eprintln!(
            "    idle window: {} s with the consumers ready and nothing sent",
            spec.idle_window_s
        );
        let half = Duration::from_secs_f64(spec.idle_window_s as f64 / 2.0);
        let snap = |running: &[(Model, String, Running, Instant)]| -> Vec<Option<f64>> {
            running
                .iter()
                .map(|(_, _, r, _)| cpu_seconds(r.id()))
                .chain(std::iter::once(broker_pid.and_then(cpu_seconds)))
                .collect()
        };
        let a = snap(&running);
        std::thread::sleep(half);
        let b = snap(&running);
        std::thread::sleep(half);
        let c = snap(&running);
        let halves: Vec<Option<[f64; 2]>> = (0..a.len())
            .map(|k| Some([b[k]? - a[k]?, c[k]? - b[k]?]))
            .collect();
        broker_idle = halves.last().copied().flatten();
        idle_cpu = halves[..running.len()].to_vec();
    }

    // The load.
    let cpu_before: Vec<Option<f64>> = running
        .iter()
        .map(|(_, _, r, _)| cpu_seconds(r.id()))
        .collect();
    let produce_start = Instant::now();
    let produce_start_s = sampler.now();
    let mut segments = Vec::new();
    let mut parts = Vec::new();
    for (k, seg) in spec.segments.iter().enumerate() {
        let name = format!("producer-{}", k + 1);
        let stats = dir.join(format!("{name}.json"));
        let mut args = settings.producer(&topic, seg.count, seg.rate, &stats, false);
        args.first_id = *env.next_id;
        *env.next_id += seg.count;
        let start_s = sampler.now();
        let expected = seg
            .count
            .checked_div(seg.rate)
            .unwrap_or(seg.count / 20_000);
        let f = procs::run(
            &name,
            &bins.producer(),
            &argv(&args)?,
            &dir.join(format!("{name}.log")),
            Duration::from_secs(120 + expected * 2),
        )?;
        let end_s = sampler.now();
        if !f.ok() {
            failures.push(format!("{}: {}", spec.name, f.failure()));
        }
        match read_json::<ProducerStats>(&stats) {
            Ok(p) => {
                segments.push(SegmentRun {
                    rate: seg.rate,
                    count: seg.count,
                    acknowledged: p.events_acknowledged,
                    events_per_second: p.events_per_second,
                    start_s,
                    end_s,
                    wall_seconds: p.wall_seconds,
                    cpu_seconds: p.cpu_seconds,
                    errors: p.errors.clone(),
                });
                parts.push(p);
            }
            Err(e) => failures.push(format!("{}: {name}: {e:#}", spec.name)),
        }
        if seg.pause_after_s > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(seg.pause_after_s));
        }
    }
    let producer = merge(&parts).context("no producer stats")?;
    common::stats::write_json(&dir.join("producer.json"), &producer)?;

    let mut consumers_start_s = 0.0;
    if spec.consumers_after_producer {
        consumers_start_s = sampler.now();
        running = spawn_consumers(&dir)?;
        {
            let mut t = sampler.tracked.lock().expect("not poisoned");
            for (_, name, r, _) in &running {
                t.push((name.clone(), r.id()));
            }
        }
        wait_ready(&mut running, &dir, &mut ready_at);
        idle_cpu = vec![None; running.len()];
    }

    // The consumers finish: at --max-events (one instance), or when idle.
    let limit = Duration::from_secs(300 + total / 5_000);
    let mut consumers = Vec::new();
    let produced_all = producer.events_acknowledged == producer.events_requested;
    for (k, (model, name, r, spawned)) in running.into_iter().enumerate() {
        let f = if produced_all || spec.instances > 1 {
            r.wait(limit)?
        } else {
            r.stop()?
        };
        if !f.ok() {
            failures.push(format!("{}: {}", spec.name, f.failure()));
        }
        let stats_path = dir.join(format!("{name}.json"));
        let stats: ConsumerStats = match read_json(&stats_path) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: {e:#}", spec.name));
                continue;
            }
        };
        let log = std::fs::read_to_string(&f.log).unwrap_or_default();
        let assignments = log
            .lines()
            .filter(|l| l.contains(" partition(s) of "))
            .count() as u64;
        let revocations = log.lines().filter(|l| l.contains("revoked [")).count() as u64;
        // From the producer's start to the consumer's exit (its start plus
        // its own process time).
        let exited = spawned + Duration::from_secs_f64(stats.process_seconds.max(0.0));
        let active_seconds = (!spec.consumers_after_producer).then(|| {
            exited
                .saturating_duration_since(produce_start)
                .as_secs_f64()
        });
        let active_cpu_seconds = if spec.consumers_after_producer {
            Some(stats.cpu_seconds)
        } else {
            cpu_before[k].map(|b| stats.cpu_seconds - b)
        };
        consumers.push(ConsumerRun {
            model: model.name().to_string(),
            name: name.clone(),
            stats,
            ready_s: ready_at.get(k).copied().flatten(),
            idle_cpu_seconds: idle_cpu.get(k).copied().flatten(),
            active_cpu_seconds,
            active_seconds,
            assignments,
            revocations,
            exit_code: f.code(),
        });
    }
    let samples = sampler.finish();
    topics::delete(&settings.brokers, &topic);

    let checks = if spec.instances == 1 {
        check_phase_child(&dir)?
    } else {
        let mut checks = vec![verify::check_producer(&spec.name, &producer)];
        for model in &spec.models {
            let dbs: Vec<PathBuf> = (0..spec.instances)
                .map(|i| dir.join(format!("{}.db", instance_name(*model, i, spec.instances))))
                .collect();
            checks.extend(check_union(&spec.name, model.name(), &dbs, &producer));
        }
        checks
    };
    let verification = verify::verdict(&checks).to_string();
    eprintln!(
        "    [claims] {}: verification {verification} ({} checks) in {:.0} s",
        spec.name,
        checks.len(),
        started.elapsed().as_secs_f64()
    );
    for c in checks.iter().filter(|c| !c.pass) {
        eprintln!("    {}", c.line());
    }
    let run = PhaseRun {
        name: spec.name.clone(),
        instances: spec.instances,
        batch_size,
        segments,
        producer,
        consumers,
        idle_window_s: spec.idle_window_s,
        broker_idle_cpu_seconds: broker_idle,
        produce_start_s,
        consumers_start_s,
        samples,
        checks,
        verification,
        seconds: started.elapsed().as_secs_f64(),
        failures,
    };
    common::stats::write_json(&dir.join("phase.json"), &run)?;
    Ok(run)
}

/// The producer runs of a phase as one: counts, amount sum and id
/// checksum added up (the checksum is a wrapping sum, so the sum of the
/// parts is the checksum of the whole), times and CPU added up.
pub fn merge(parts: &[ProducerStats]) -> Option<ProducerStats> {
    let first = parts.first()?;
    let mut m = first.clone();
    let mut checksum = 0u64;
    for (k, p) in parts.iter().enumerate() {
        let c = u64::from_str_radix(&p.id_checksum, 16).unwrap_or(0);
        checksum = checksum.wrapping_add(c);
        if k == 0 {
            continue;
        }
        m.events_requested += p.events_requested;
        m.events_sent += p.events_sent;
        m.events_acknowledged += p.events_acknowledged;
        m.events_failed += p.events_failed;
        m.amount_minor_sum += p.amount_minor_sum;
        m.last_event_id = p.last_event_id;
        m.wall_seconds += p.wall_seconds;
        m.cpu_seconds += p.cpu_seconds;
        m.max_rss_bytes = m.max_rss_bytes.max(p.max_rss_bytes);
        m.interrupted |= p.interrupted;
        m.errors.extend(p.errors.iter().cloned());
    }
    m.id_checksum = format!("{checksum:016x}");
    m.events_per_second = if m.wall_seconds > 0.0 {
        m.events_acknowledged as f64 / m.wall_seconds
    } else {
        0.0
    };
    Some(m)
}

/// `bench check-phase` in a child process, as `bench run` does.
fn check_phase_child(dir: &Path) -> anyhow::Result<Vec<Check>> {
    // This very binary runs the check, as for the ceilings.
    let bench = std::env::current_exe().context("locate the bench binary")?;
    let json = dir.join("checks.json");
    let args = CheckPhaseArgs {
        dir: dir.to_path_buf(),
        json: json.clone(),
    };
    let mut a = vec![OsString::from("check-phase")];
    a.extend(argv(&args)?);
    let f = procs::run(
        "verify",
        &bench,
        &a,
        &dir.join("verify.log"),
        Duration::from_secs(600),
    )?;
    if !f.ok() {
        bail!("{}", f.failure());
    }
    verify::read_checks(&json)
}

fn check(phase: &str, model: &str, what: &str, expected: String, actual: String) -> Check {
    Check {
        phase: phase.into(),
        model: model.into(),
        what: what.into(),
        pass: expected == actual,
        expected,
        actual,
    }
}

/// A group's databases as one (`ledger`): each acknowledged event exactly
/// once across them, the amount sum, the id checksum (the wrapping sum of
/// each database's), no dead letters.
pub fn check_union(phase: &str, model: &str, dbs: &[PathBuf], p: &ProducerStats) -> Vec<Check> {
    let present: Vec<PathBuf> = dbs.iter().filter(|d| d.is_file()).cloned().collect();
    let summary = ledger::Ledger::open(&present).and_then(|l| l.summary());
    let s = match summary {
        Ok(s) => s,
        Err(e) => {
            return vec![check(
                phase,
                model,
                "ledger readable",
                "the group's databases".into(),
                format!("error: {e}"),
            )];
        }
    };
    let mut checksum = 0u64;
    for db in &present {
        if let Ok(x) = store::Store::open(db).and_then(|s| s.summary()) {
            checksum = checksum.wrapping_add(x.id_checksum.value());
        }
    }
    let acked = p.events_acknowledged.to_string();
    let dead: u64 = s.databases.iter().map(|d| d.dead_letters).sum();
    vec![
        check(
            phase,
            model,
            "distinct events (ledger)",
            acked.clone(),
            s.distinct_events.to_string(),
        ),
        check(
            phase,
            model,
            "rows over the databases",
            acked,
            s.rows.to_string(),
        ),
        check(
            phase,
            model,
            "amount sum (ledger)",
            p.amount_minor_sum.to_string(),
            s.amount_minor_sum.to_string(),
        ),
        check(
            phase,
            model,
            "id checksum (sum over the databases)",
            p.id_checksum.to_ascii_lowercase(),
            format!("{checksum:016x}"),
        ),
        check(phase, model, "dead letters", "0".into(), dead.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::stats::{ProducerMode, STATS_VERSION};
    use std::collections::BTreeMap;

    fn part(first: u64, n: u64, amount: i128) -> ProducerStats {
        let sum: proto::IdChecksum = (first..first + n).collect();
        ProducerStats {
            version: STATS_VERSION,
            mode: ProducerMode::Events,
            brokers: "b".into(),
            topic: "t".into(),
            events_requested: n,
            events_sent: n,
            events_acknowledged: n,
            events_failed: 0,
            amount_minor_sum: amount,
            id_checksum: sum.hex(),
            first_event_id: first,
            last_event_id: first + n - 1,
            seed: 42,
            accounts: 10,
            rate_limit: 0,
            wall_seconds: 1.0,
            events_per_second: n as f64,
            cpu_seconds: 0.5,
            max_rss_bytes: 1,
            interrupted: false,
            settings: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// The merged checksum is the checksum of all the ids, as a database
    /// holding every part's events would compute it.
    #[test]
    fn merged_producer_stats_are_those_of_the_whole() {
        let m = merge(&[part(1, 100, 5), part(101, 50, -2), part(151, 7, 1)]).unwrap();
        let whole: proto::IdChecksum = (1..158).collect();
        assert_eq!(m.id_checksum, whole.hex());
        assert_eq!(m.events_acknowledged, 157);
        assert_eq!(m.amount_minor_sum, 4);
        assert_eq!((m.first_event_id, m.last_event_id), (1, 157));
        assert_eq!(m.wall_seconds, 3.0);
        assert!(merge(&[]).is_none());
    }
}
