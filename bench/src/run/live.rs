//! The live phases: both consumers live while the producer emits at a
//! rate; the saturation sweep over doubling rates.

use super::*;

/// The saturation sweep: live steps (`saturation-<rate>`) at offered rates
/// doubling from `--saturation-start`, while at least one consumer keeps
/// pace ([`crate::results::sustains`] with no bound; a p99 above the bound alone does
/// not end the sweep, so the picture shows latency across the whole
/// range) and the producer can offer the rate. Each step's figures are
/// read back from the run's files as the report will read them.
pub(super) fn saturation(ctx: &mut Ctx<'_>) {
    let mut rate = ctx.args.saturation_start;
    while rate <= ctx.args.saturation_max {
        let sweep = live_phase(ctx, "saturation", rate).and_then(|()| {
            ctx.save()?;
            let sat = Results::collect(&ctx.env.out)?.saturation;
            let sat = sat.filter(|s| s.steps.last().is_some_and(|s| s.rate == rate));
            sat.with_context(|| format!("no figures for the saturation step at {rate}/s"))
        });
        let (sat, step) = match &sweep {
            Ok(s) => (s, &s.steps[s.steps.len() - 1]),
            Err(e) => {
                ctx.fail(format!("saturation step at {rate}/s: {e:#}"));
                break;
            }
        };
        // Every step so far sustained, or kept pace with.
        let held = |max: Option<u64>| max == Some(rate);
        let said = |sustained, paced| match (held(sustained), held(paced)) {
            (true, _) => "sustains every rate so far",
            (false, true) => "keeps pace, p99 above the bound at some rate",
            _ => "has fallen behind",
        };
        eprintln!(
            "    saturation at {rate}/s: producer {:.0}/s; pull {}, push {}",
            step.producer_events_per_second,
            said(sat.pull_max_rate, sat.pull_max_rate_keeping_pace),
            said(sat.push_max_rate, sat.push_max_rate_keeping_pace)
        );
        if !crate::results::offered(step) {
            eprintln!("    the producer could not offer {rate}/s: the sweep ends here");
            break;
        }
        if !held(sat.pull_max_rate_keeping_pace) && !held(sat.push_max_rate_keeping_pace) {
            break;
        }
        rate = rate.saturating_mul(2);
    }
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
