//! The claims report's pictures (SVG):
//!
//! - `claims-latency.svg`: p50 / p99 / p99.9 against the steady rate, both
//!   axes logarithmic, from 1 event/s up;
//! - `claims-cpu.svg`: CPU per event against the steady rate, log-log;
//! - `claims-burst.svg`, `claims-step.svg`, `claims-slow.svg`: the
//!   group's lag and the process's RSS over time, pull against push (the
//!   first repeat), the producer's segments shaded.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::ClaimsRun;
use super::analysis::{Analysis, RateFigures};
use super::verdict::Pair;
use crate::phase::sampler::Sample;
use crate::phase::{PhaseRun, SegmentRun};
use crate::plots::draw::{self, XAxis, color, err, human, legend, line, svg};

pub fn draw_all(r: &ClaimsRun, a: &Analysis, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let latency: &[(&str, Pick)] = &[
        ("p50", |f| &f.p50_ms),
        ("p99", |f| &f.p99_ms),
        ("p99.9", |f| &f.p999_ms),
    ];
    let cpu: &[(&str, Pick)] = &[("CPU", |f| &f.cpu_us_per_event)];
    for (file, title, y_desc, picks) in [
        (
            "claims-latency.svg",
            "End-to-end latency per steady rate (mean of repeats)",
            "latency, ms (log)",
            latency,
        ),
        (
            "claims-cpu.svg",
            "Consumer CPU per event per steady rate (mean of repeats)",
            "CPU per event, µs (log)",
            cpu,
        ),
    ] {
        if !a.latency.is_empty() {
            out.push(dir.join(file));
            per_rate(&a.latency, &dir.join(file), title, y_desc, picks)?;
        }
    }
    for (prefix, file, title) in [
        ("burst-1", "claims-burst.svg", "Bursts"),
        ("step-1", "claims-step.svg", "Step"),
        ("slow-1", "claims-slow.svg", "Slow sink"),
    ] {
        if let Some(phase) = r.phases.iter().find(|p| p.name == prefix) {
            out.push(dir.join(file));
            timeline(phase, &dir.join(file), title)?;
        }
    }
    Ok(out)
}

type Pick = fn(&RateFigures) -> &Pair;

fn per_rate(
    figures: &[RateFigures],
    path: &Path,
    title: &str,
    y_desc: &str,
    picks: &[(&str, Pick)],
) -> anyhow::Result<()> {
    let lines = draw::lines(picks, |model, pick| {
        let points = figures.iter().filter_map(|f| {
            let p = pick(f);
            let point = (f.rate.max(1) as f64, p.mean(model).max(0.01));
            (!p.values(model).is_empty()).then_some(point)
        });
        points.collect()
    });
    // The rates are from 1/s up.
    let rates = figures.iter().map(|f| f.rate.max(1) as f64);
    let x_hi = rates.fold(1.0, f64::max) * 1.5;
    let x = XAxis {
        range: (1.0 / 1.5..x_hi).log_scale(),
        desc: "offered rate, events/s (log)",
        labels: 10,
        format: &|v| human(*v),
    };
    draw::per_rate(path, title, x, y_desc, &lines)
}

fn timeline(phase: &PhaseRun, path: &Path, title: &str) -> anyhow::Result<()> {
    let t0 = phase.produce_start_s;
    let series = |f: &dyn Fn(&Sample, &str) -> Option<f64>| {
        ["pull", "push"].map(|m| {
            let points = phase
                .samples
                .iter()
                .filter_map(|s| f(s, m).map(|v| (s.t - t0, v)));
            (m, points.collect::<Vec<_>>())
        })
    };
    let lag = series(&|s, m| Some(s.lag.iter().find(|l| l.model == m)?.total() as f64));
    let rss = series(&|s, m| Some(s.procs.iter().find(|p| p.name == m)?.rss_bytes as f64 / 1e6));
    let x_lo = phase.samples.first().map_or(0.0, |s| s.t - t0).min(0.0);
    let x_hi = phase.samples.last().map_or(1.0, |s| s.t - t0).max(1.0);
    svg(path, (960, 640), |root| {
        let (top, bottom) = root.split_vertically(320);
        for (area, data, y_desc, caption) in [
            (
                &top,
                &lag,
                "lag, events",
                format!("{title}: the group's lag (topic end − committed offset) over time"),
            ),
            (
                &bottom,
                &rss,
                "RSS, MB",
                format!("{title}: each consumer's resident memory over time"),
            ),
        ] {
            let y_hi = data
                .iter()
                .flat_map(|(_, s)| s.iter().map(|p| p.1))
                .fold(1.0, f64::max)
                * 1.1;
            let x_desc = "seconds since the producer started";
            let mut chart = draw::linear(area, &caption, (x_lo..x_hi, y_hi), (x_desc, y_desc))?;
            let band = RGBColor(200, 200, 200).mix(0.35).filled();
            let band = |s: &SegmentRun| {
                Rectangle::new([(s.start_s - t0, 0.0), (s.end_s - t0, y_hi)], band)
            };
            chart
                .draw_series(phase.segments.iter().map(band))
                .map_err(err)?;
            for (model, points) in data.iter() {
                let style = ShapeStyle::from(&color(model)).stroke_width(2);
                line(&mut chart, points, style, model.to_string(), None)?;
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
        }
        Ok(())
    })
}
