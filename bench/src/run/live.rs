//! The live phases: both consumers live while the producer emits at a
//! rate; the saturation sweep over doubling rates.

use super::*;

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
        let step = live_phase(ctx, "saturation", rate).and_then(|()| live_step(ctx, rate));
        let step = match step {
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
    let steps = Results::collect(&ctx.env.out)?.saturation.map(|s| s.steps);
    let step = steps.into_iter().flatten().find(|s| s.rate == rate);
    step.with_context(|| format!("no figures for the saturation step at {rate}/s"))
}

/// One live phase, `{prefix}-{rate}`: both consumers live in fresh groups
/// while the producer emits `rate` events/s for `--duration` seconds,
/// once both are ready (at most `--warmup` seconds); not sampled.
pub(super) fn live_phase(ctx: &mut Ctx<'_>, prefix: &str, rate: u64) -> anyhow::Result<()> {
    let phase = format!("{prefix}-{rate}");
    let dir = ctx.env.out.join(&phase);
    let duration = ctx.args.duration;
    let count = (rate * duration).max(1);
    let load = Segment {
        count,
        rate,
        pause_after_s: 0.0,
    };
    let spec = PhaseSpec {
        ready_wait: Duration::from_secs(ctx.args.warmup),
        sample: false,
        ..PhaseSpec::new(phase.clone(), vec![load])
    };
    let r = ctx.step(
        &phase,
        &format!(
            "both consumers live while the producer emits {rate} events/s for {duration} s ({count} events)"
        ),
        |ctx| {
            let run = phase::run(&ctx.env, &spec, 1)?;
            for (name, code) in &run.exit_codes {
                ctx.exit_code(&phase, name, *code);
            }
            for model in verify::MODELS {
                ctx.record_db(&phase, model, &dir.join(format!("{model}.db")));
            }
            if run.failures.is_empty() {
                Ok(())
            } else {
                bail!("{}", run.failures.join("; "))
            }
        },
    );
    if dir.join("producer.json").is_file() {
        ctx.step(&phase, "verification of pull.db and push.db", |ctx| {
            ctx.verify_phase(&phase, &dir)
        })?;
    }
    r
}
