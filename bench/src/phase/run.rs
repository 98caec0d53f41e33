//! [`run`]: the topic, the consumers, the idle window, the producer's
//! segments and the consumers' exit.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use consumer_core::Model;
use consumer_core::ready::Ready;
use testkit::procs::Proc;

use super::checks::merge;
use super::sampler::{EVERY, Lags, Sampler, Tracked};
use super::{ConsumerRun, Env, PhaseRun, PhaseSpec, SegmentRun, drain_limit};
use crate::machine::cpu_seconds;
use crate::stats::{ConsumerStats, ProducerStats, read_stats};

/// After all are ready: their first fetches, before the first event.
const READY_MARGIN: Duration = Duration::from_millis(500);
/// Several instances of a group: time for the last rebalance round.
const SETTLE: Duration = Duration::from_secs(2);

/// The `i`th instance of `model`: `pull` alone, `pull-1`... of several.
pub fn instance_name(model: Model, i: usize, instances: usize) -> String {
    if instances == 1 {
        model.name().to_string()
    } else {
        format!("{}-{}", model.name(), i + 1)
    }
}

/// Runs one phase in `env.out/<name>` on a topic of its own, deleted
/// afterwards, the producer's ids from `first_id`; an error only when it
/// could not run at all (a failed process is in [`PhaseRun::failures`]).
/// Its checks are left to the caller.
pub fn run(env: &Env, spec: &PhaseSpec, first_id: u64) -> anyhow::Result<PhaseRun> {
    let dir = env.out.join(&spec.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let topic = env.topic(&spec.name);
    env.create_topic(&topic)?;
    let run = run_on(env, spec, &dir, &topic, first_id);
    env.delete_topic(&topic);
    run
}

fn run_on(
    env: &Env,
    spec: &PhaseSpec,
    dir: &Path,
    topic: &str,
    first_id: u64,
) -> anyhow::Result<PhaseRun> {
    let started = Instant::now();
    let settings = &env.settings;
    let groups: Vec<(String, String)> = spec
        .models
        .iter()
        .map(|&m| (m.name().to_string(), env.group(m, &spec.name)))
        .collect();
    let batch_size = spec.batch_size.unwrap_or(settings.batch_size);
    let total = spec.events();
    let pauses: f64 = spec.segments.iter().map(|s| s.pause_after_s).sum();
    // Exit when idle: a safety net; single instances exit at --max-events.
    // It must outlast the wait for the others and the pauses.
    let idle_s = if spec.instances == 1 {
        spec.ready_wait.as_secs() + spec.idle_window_s + pauses.ceil() as u64 + 15
    } else {
        3
    };
    // Each model's instances in turn: the `k`th is of `spec.models[k / instances]`.
    let spawn_consumers = || -> anyhow::Result<Vec<Proc>> {
        let mut running = Vec::new();
        for (model, (_, group)) in spec.models.iter().zip(&groups) {
            for i in 0..spec.instances {
                let name = instance_name(*model, i, spec.instances);
                let mut args = settings.consumer(*model, dir, &name, topic, group, total.max(1));
                args.exit_when_idle = Some(idle_s);
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
                running.push(env.consumer(*model, &name, dir, &args)?);
            }
        }
        Ok(running)
    };
    let track = |tracked: &Tracked, running: &[Proc]| {
        let mut t = tracked.lock().expect("not poisoned");
        t.extend(running.iter().map(|p| (p.name.clone(), p.pid())));
    };

    let tracked: Tracked = Arc::new(Mutex::new(
        env.broker_pid
            .map(|pid| ("broker".into(), pid))
            .into_iter()
            .collect(),
    ));
    let mut running = Vec::new();
    let mut ready_at: Vec<Option<f64>> = Vec::new();
    if !spec.consumers_after_producer {
        running = spawn_consumers()?;
        eprintln!(
            "    consumers started; the producer starts once they are ready (at most {} s)",
            spec.ready_wait.as_secs()
        );
        ready_at = wait_ready(&mut running, dir, spec.ready_wait);
        std::thread::sleep(READY_MARGIN);
        if spec.instances > 1 {
            // Cooperative rebalances finish in a second round after the
            // last instance's first assignment.
            std::thread::sleep(SETTLE);
        }
        track(&tracked, &running);
    }
    let clock = Instant::now();
    let now = || clock.elapsed().as_secs_f64();
    let sampler = if spec.sample {
        let lags = Lags::of(&settings.brokers, topic, settings.partitions, &groups)?;
        Some(Sampler::start(clock, EVERY, Arc::clone(&tracked), lags))
    } else {
        None
    };

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
        let snap = |running: &[Proc]| -> Vec<Option<f64>> {
            running
                .iter()
                .map(|p| cpu_seconds(p.pid()))
                .chain(std::iter::once(env.broker_pid.and_then(cpu_seconds)))
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
    let cpu_before: Vec<Option<f64>> = running.iter().map(|p| cpu_seconds(p.pid())).collect();
    let produce_start = Instant::now();
    let produce_start_s = now();
    let mut segments = Vec::new();
    let mut parts = Vec::new();
    let mut failures = Vec::new();
    let mut exit_codes = Vec::new();
    let single = spec.segments.len() == 1;
    let mut id = first_id;
    for (k, seg) in spec.segments.iter().enumerate() {
        let name = if single {
            "producer".to_string()
        } else {
            format!("producer-{}", k + 1)
        };
        let start_s = now();
        let f = env.producer(dir, &name, topic, (seg.count, seg.rate), id, false)?;
        id += seg.count;
        let end_s = now();
        exit_codes.push((name.clone(), f.code()));
        if !f.ok() {
            failures.push(format!("{}: {}", spec.name, f.failure()));
        }
        match read_stats::<ProducerStats>(&dir.join(format!("{name}.json"))) {
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
    if !single {
        common::stats::write_json(&dir.join("producer.json"), &producer)?;
    }

    let mut consumers_start_s = 0.0;
    if spec.consumers_after_producer {
        consumers_start_s = now();
        running = spawn_consumers()?;
        track(&tracked, &running);
        ready_at = wait_ready(&mut running, dir, spec.ready_wait);
        idle_cpu = vec![None; running.len()];
    }

    // The consumers finish: at --max-events (one instance), or when idle;
    // without every event produced, none would come: stopped at once.
    let mut consumers = Vec::new();
    let produced_all = producer.events_acknowledged == producer.events_requested;
    for (k, mut proc) in running.into_iter().enumerate() {
        let f = if produced_all || spec.instances > 1 {
            proc.finish_within(drain_limit(total))?
        } else {
            proc.stop()?
        };
        exit_codes.push((proc.name.clone(), f.code()));
        if !f.ok() {
            failures.push(format!("{}: {}", spec.name, f.failure()));
        }
        let stats: ConsumerStats = match read_stats(&dir.join(format!("{}.json", proc.name))) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: {e:#}", spec.name));
                continue;
            }
        };
        let log = std::fs::read_to_string(&f.log).unwrap_or_default();
        let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count() as u64;
        // From the producer's start to the consumer's exit (its start plus
        // its own process time).
        let exited = proc.started() + Duration::from_secs_f64(stats.process_seconds.max(0.0));
        let after = spec.consumers_after_producer;
        consumers.push(ConsumerRun {
            model: spec.models[k / spec.instances].name().to_string(),
            name: proc.name.clone(),
            ready_s: ready_at.get(k).copied().flatten(),
            idle_cpu_seconds: idle_cpu.get(k).copied().flatten(),
            active_cpu_seconds: if after {
                Some(stats.cpu_seconds)
            } else {
                cpu_before[k].map(|b| stats.cpu_seconds - b)
            },
            active_seconds: (!after).then(|| {
                let active = exited.saturating_duration_since(produce_start);
                active.as_secs_f64()
            }),
            assignments: count(" partition(s) of "),
            revocations: count("revoked ["),
            exit_code: f.code(),
            stats,
        });
    }
    Ok(PhaseRun {
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
        samples: sampler.map(Sampler::finish).unwrap_or_default(),
        checks: Vec::new(),
        verification: String::new(),
        seconds: started.elapsed().as_secs_f64(),
        failures,
        exit_codes,
    })
}

/// Waits at most `limit` until every consumer has written its ready file
/// in `dir` (partitions assigned and positioned) or one has exited; for
/// each, the seconds from its start until it was ready.
fn wait_ready(running: &mut [Proc], dir: &Path, limit: Duration) -> Vec<Option<f64>> {
    let mut ready_at = vec![None; running.len()];
    let until = Instant::now() + limit;
    while Instant::now() < until && ready_at.iter().any(Option::is_none) {
        for (k, p) in running.iter().enumerate() {
            let file = dir.join(format!("{}.ready", p.name));
            if ready_at[k].is_none() && Ready::read(&file).is_some_and(|x| x.pid == p.pid()) {
                ready_at[k] = Some(p.started().elapsed().as_secs_f64());
            }
        }
        if let Some(p) = running.iter_mut().find_map(|p| p.try_status().map(|_| p)) {
            eprintln!("    {} exited before it was ready", p.name);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ready_at
}
