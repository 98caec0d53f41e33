//! The live phases: both consumers live while the producer emits at a
//! rate; the saturation sweep over doubling rates.

use super::*;

pub(super) fn live(ctx: &mut Ctx<'_>, rate: u64) -> anyhow::Result<()> {
    live_phase(ctx, "live", rate)
}

/// The saturation sweep: live steps (`saturation-<rate>`) at offered rates
/// doubling from `--saturation-start`, while at least one consumer keeps
/// pace ([`crate::results::keeps_pace`]; a p99 above the bound alone does
/// not end the sweep, so the picture shows latency across the whole
/// range) and the producer can offer the rate.
pub(super) fn saturation(ctx: &mut Ctx<'_>) {
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

/// The figures of one finished saturation step, read back from the run's
/// files as the report will read them.
fn live_step(ctx: &Ctx<'_>, rate: u64) -> anyhow::Result<crate::results::LiveResult> {
    ctx.save()?;
    let steps = Results::collect(&ctx.out)?.saturation.map(|s| s.steps);
    let step = steps.into_iter().flatten().find(|s| s.rate == rate);
    step.with_context(|| format!("no figures for the saturation step at {rate}/s"))
}

/// One live phase, `{prefix}-{rate}`: both consumers live in fresh groups
/// while the producer emits `rate` events/s for `--duration` seconds.
pub(super) fn live_phase(ctx: &mut Ctx<'_>, prefix: &str, rate: u64) -> anyhow::Result<()> {
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
            let started = Instant::now();
            for model in Model::ALL {
                let name = model.name();
                let group = format!("{}.{name}.{phase}", ctx.run_id);
                let job = ConsumerJob {
                    max_events: count,
                    idle_s: idle,
                    ..ConsumerJob::in_dir(&dir, name, &topic, &group, true)
                };
                let consumer = ctx.consumer(model, &dir, &job)?;
                ready.push(job.ready.expect("set above"));
                running.push(consumer);
            }
            eprintln!(
                "    consumers started; the producer starts once both are ready (at most {warmup} s)"
            );
            let mut waiting: Vec<_> = ready.into_iter().zip(&mut running).map(|(f, p)| (f, p, started)).collect();
            if wait_ready(&mut waiting, Duration::from_secs(warmup)).iter().all(Option::is_some) {
                // Let them send their first fetch before the first event
                // exists.
                std::thread::sleep(READY_MARGIN);
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
            for mut r in running {
                // Without a producer nothing will arrive: stop them now.
                let f = if producer_ok {
                    r.finish_within(limit)?
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

/// After both consumers are ready (partitions assigned and positioned):
/// time for their first fetches, before the live producer starts.
const READY_MARGIN: Duration = Duration::from_millis(500);
