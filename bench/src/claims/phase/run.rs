//! [`run_phase`]: the topic, the consumers, the idle window, the
//! producer's segments, the consumers' exit and the verification.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use consumer_core::Model;

use super::checks::{check_union, merge};
use super::{ConsumerRun, PhaseEnv, PhaseRun, PhaseSpec, SegmentRun};
use crate::argv::argv;
use crate::claims::sampler::Sampler;
use crate::machine::cpu_seconds;
use crate::settings::ConsumerJob;
use crate::stats::{ConsumerStats, ProducerStats, read_json};
use crate::topics;
use crate::verify;
use testkit::procs::Proc;

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
    let spawn_consumers = |dir: &Path| -> anyhow::Result<Vec<(Model, String, Proc, Instant)>> {
        let mut running = Vec::new();
        for (model, (_, group)) in spec.models.iter().zip(&groups) {
            for i in 0..spec.instances {
                let name = instance_name(*model, i, spec.instances);
                let job = ConsumerJob {
                    max_events: total.max(1),
                    idle_s,
                    ..ConsumerJob::in_dir(dir, &name, &topic, group, true)
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
                let r = Proc::spawn_echoed(&bin, &argv(&args)?, &log, &name)?;
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
    let wait_ready = |running: &mut Vec<(Model, String, Proc, Instant)>, dir: &Path| {
        let ready_file = |name: &str| dir.join(format!("{name}.ready"));
        let mut waiting: Vec<_> = running
            .iter_mut()
            .map(|(_, name, r, t)| (ready_file(name), r, *t))
            .collect();
        crate::run::wait_ready(&mut waiting, READY_WAIT)
    };
    let mut failures = Vec::new();
    if !spec.consumers_after_producer {
        running = spawn_consumers(&dir)?;
        ready_at = wait_ready(&mut running, &dir);
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
            t.push((name.clone(), r.pid()));
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
        let snap = |running: &[(Model, String, Proc, Instant)]| -> Vec<Option<f64>> {
            running
                .iter()
                .map(|(_, _, r, _)| cpu_seconds(r.pid()))
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
        .map(|(_, _, r, _)| cpu_seconds(r.pid()))
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
        let log = dir.join(format!("{name}.log"));
        let f = Proc::spawn_echoed(&bins.producer(), &argv(&args)?, &log, &name)?
            .finish_within(Duration::from_secs(120 + expected * 2))?;
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
                t.push((name.clone(), r.pid()));
            }
        }
        ready_at = wait_ready(&mut running, &dir);
        idle_cpu = vec![None; running.len()];
    }

    // The consumers finish: at --max-events (one instance), or when idle.
    let limit = Duration::from_secs(300 + total / 5_000);
    let mut consumers = Vec::new();
    let produced_all = producer.events_acknowledged == producer.events_requested;
    for (k, (model, name, mut r, spawned)) in running.into_iter().enumerate() {
        let f = if produced_all || spec.instances > 1 {
            r.finish_within(limit)?
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
        verify::phase_in_child(&dir, Duration::from_secs(600))?
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
