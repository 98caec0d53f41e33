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
use super::phase::PhaseRun;
use super::verdict::Pair;
use crate::plots::human;

const PULL: RGBColor = RGBColor(31, 119, 180);
const PUSH: RGBColor = RGBColor(214, 39, 40);
const FONT: &str = "sans-serif";

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e:?}")
}

fn color(model: &str) -> RGBColor {
    if model == "pull" { PULL } else { PUSH }
}

/// Draws what it has data for; returns the files written.
pub fn draw_all(r: &ClaimsRun, a: &Analysis, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !a.latency.is_empty() {
        let p = dir.join("claims-latency.svg");
        per_rate(
            &a.latency,
            &p,
            "End-to-end latency per steady rate (mean of repeats)",
            "latency, ms (log)",
            &[
                ("p50", |f: &RateFigures| &f.p50_ms),
                ("p99", |f: &RateFigures| &f.p99_ms),
                ("p99.9", |f: &RateFigures| &f.p999_ms),
            ],
        )?;
        out.push(p);
        let p = dir.join("claims-cpu.svg");
        per_rate(
            &a.latency,
            &p,
            "Consumer CPU per event per steady rate (mean of repeats)",
            "CPU per event, µs (log)",
            &[("CPU", |f: &RateFigures| &f.cpu_us_per_event)],
        )?;
        out.push(p);
    }
    for (prefix, file, title) in [
        ("burst-1", "claims-burst.svg", "Bursts"),
        ("step-1", "claims-step.svg", "Step"),
        ("slow-1", "claims-slow.svg", "Slow sink"),
    ] {
        if let Some(phase) = r.phases.iter().find(|p| p.name == prefix) {
            let p = dir.join(file);
            timeline(phase, &p, title)?;
            out.push(p);
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
    let mut lines = Vec::new();
    for model in ["pull", "push"] {
        for (k, (label, pick)) in picks.iter().enumerate() {
            let points: Vec<(f64, f64)> = figures
                .iter()
                .filter_map(|f| {
                    let p = pick(f);
                    let v = if model == "pull" { &p.pull } else { &p.push };
                    (!v.is_empty()).then(|| {
                        let m = if model == "pull" {
                            p.pull_mean()
                        } else {
                            p.push_mean()
                        };
                        (f.rate.max(1) as f64, m.max(0.01))
                    })
                })
                .collect();
            if !points.is_empty() {
                lines.push((model, *label, k, points));
            }
        }
    }
    let xs = figures.iter().map(|f| f.rate.max(1) as f64);
    let x_lo = xs.clone().fold(f64::INFINITY, f64::min).min(1.0) / 1.5;
    let x_hi = xs.fold(1.0, f64::max) * 1.5;
    let ys = lines.iter().flat_map(|l| l.3.iter().map(|p| p.1));
    let y_lo = ys.clone().fold(f64::INFINITY, f64::min).min(1.0) / 2.0;
    let y_hi = ys.fold(1.0, f64::max) * 2.0;

    let root = SVGBackend::new(path, (960, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("offered rate, events/s (log)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| human(*v))
        .y_label_formatter(&|v| format!("{v}"))
        .draw()
        .map_err(err)?;
    for (model, label, k, points) in &lines {
        let c = color(model);
        let style = ShapeStyle::from(&c).stroke_width(1 + *k as u32);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(err)?
            .label(format!("{model} {label}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        let k = *k;
        chart
            .draw_series(points.iter().map(move |&(x, y)| -> DynElement<_, _> {
                match k {
                    0 => Circle::new((x, y), 4, c.filled()).into_dyn(),
                    1 => TriangleMarker::new((x, y), 5, c.filled()).into_dyn(),
                    _ => Cross::new((x, y), 5, c.stroke_width(2)).into_dyn(),
                }
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn timeline(phase: &PhaseRun, path: &Path, title: &str) -> anyhow::Result<()> {
    let t0 = phase.produce_start_s;
    let series = |f: &dyn Fn(&super::sampler::Sample, &str) -> Option<f64>| {
        ["pull", "push"].map(|m| {
            (
                m,
                phase
                    .samples
                    .iter()
                    .filter_map(|s| f(s, m).map(|v| (s.t - t0, v)))
                    .collect::<Vec<(f64, f64)>>(),
            )
        })
    };
    let lag = series(&|s, m| {
        s.lag
            .iter()
            .find(|l| l.model == m)
            .map(|l| l.total() as f64)
    });
    let rss = series(&|s, m| {
        s.procs
            .iter()
            .find(|p| p.name == m)
            .map(|p| p.rss_bytes as f64 / 1e6)
    });
    let x_lo = phase.samples.first().map_or(0.0, |s| s.t - t0).min(0.0);
    let x_hi = phase.samples.last().map_or(1.0, |s| s.t - t0).max(1.0);
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
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
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FONT, 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(x_lo..x_hi, 0.0..y_hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("seconds since the producer started")
            .y_desc(y_desc)
            .y_label_formatter(&|v| human(*v))
            .draw()
            .map_err(err)?;
        for seg in &phase.segments {
            let band = RGBColor(200, 200, 200).mix(0.35);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(seg.start_s - t0, 0.0), (seg.end_s - t0, y_hi)],
                    band.filled(),
                )))
                .map_err(err)?;
        }
        for (model, points) in data.iter() {
            let c = color(model);
            let style = ShapeStyle::from(&c).stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(err)?
                .label(*model)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
