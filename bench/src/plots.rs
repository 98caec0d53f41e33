//! The report's pictures, as SVG (plotters' SVG backend: no system font
//! library needed, the viewer draws the text).
//!
//! - `backlog-throughput.svg`: events committed per second over time while
//!   each consumer drains the backlog alone, with the lower ceiling;
//! - `live-latency.svg`: p50 / p99 / p99.9 latency per live rate, pull
//!   against push, log-log;
//! - `live-throughput.svg`: committed events per second over time in each
//!   live phase, one panel per rate.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::claims::analysis::rate_text;
use crate::results::{Figures, LiveResult, Results};
use crate::stats::Latency;

pub mod draw;

pub use draw::human;
use draw::{Area, CEILING, XAxis, color, legend, line, per_rate, svg};

/// Events per second from a cumulative timeline (which starts, implicitly,
/// at 0 events at 0 s: the first message), over windows of at least
/// `window` seconds, as a step line: each window is a flat segment at its
/// average rate.
pub fn rate_series(timeline: &[(f64, u64)], window: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    if timeline.is_empty() {
        return out;
    }
    let (mut t0, mut n0) = (0.0, 0.0);
    for &(t, n) in timeline {
        let n = n as f64;
        if t - t0 >= window {
            let r = ((n - n0) / (t - t0)).max(0.0);
            out.push((t0, r));
            out.push((t, r));
            t0 = t;
            n0 = n;
        }
    }
    out
}

/// A window that gives about 60 steps over the run, between 0.25 s (the
/// consumers sample every 250 ms) and 5 s.
pub fn window_for(timeline: &[(f64, u64)]) -> f64 {
    let span = timeline.last().map(|p| p.0).unwrap_or(0.0);
    (span / 60.0).clamp(0.25, 5.0)
}

pub fn draw_all(r: &Results, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let backlog: Vec<(&str, &Figures)> = [("pull", &r.pull), ("push", &r.push)]
        .into_iter()
        .filter_map(|(m, x)| x.as_ref().map(|x| (m, &x.backlog)))
        .filter(|(_, f)| !f.timeline.is_empty())
        .collect();
    if !backlog.is_empty() {
        let path = dir.join("backlog-throughput.svg");
        let ceiling = r.ceilings.as_ref().and_then(|c| {
            c.lower_events_per_second
                .map(|eps| (format!("lower ceiling ({})", c.lower), eps))
        });
        let events = r.run.config.events;
        let title = format!("Backlog drain: events committed per second ({events} events)");
        svg(&path, (960, 520), |root| {
            throughput_panel(root, &title, &backlog, ceiling)
        })?;
        written.push(path);
    }
    if let Some(sat) = &r.saturation {
        let path = dir.join("saturation-latency.svg");
        let title = format!(
            "Saturation: latency per offered rate (p99 bound {} ms; pull sustains {}, push {})",
            sat.p99_bound_ms,
            sat.pull_max_rate.map_or("none".into(), rate_text),
            sat.push_max_rate.map_or("none".into(), rate_text)
        );
        live_latency(&sat.steps, &title, &path)?;
        written.push(path);
    }
    if r.live.iter().any(|l| l.pull.is_some() || l.push.is_some()) {
        let path = dir.join("live-latency.svg");
        let flush = r.setting("pull", "flush_interval_ms");
        let title = format!(
            "Live end-to-end latency per offered rate (flush interval {} ms, linger.ms {})",
            flush,
            r.setting("producer", "linger.ms")
        );
        live_latency(&r.live, &title, &path)?;
        written.push(path);
        let path = dir.join("live-throughput.svg");
        live_throughput(r, &path)?;
        written.push(path);
    }
    Ok(written)
}

fn throughput_panel(
    area: &Area<'_>,
    title: &str,
    series: &[(&str, &Figures)],
    ceiling: Option<(String, f64)>,
) -> anyhow::Result<()> {
    let rates: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(m, f)| (*m, rate_series(&f.timeline, window_for(&f.timeline))))
        .collect();
    let x_max = rates
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let y_max = rates
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.1))
        .chain(ceiling.as_ref().map(|c| c.1))
        .fold(1.0f64, f64::max)
        * 1.4;
    let x_desc = "seconds since the consumer's first message";
    let mut chart = draw::linear(area, title, (0.0..x_max, y_max), (x_desc, "events/s"))?;
    for (model, points) in &rates {
        line(
            &mut chart,
            points,
            color(model).stroke_width(2),
            model.to_string(),
            None,
        )?;
    }
    if let Some((label, eps)) = ceiling {
        let label = format!("{label}: {}/s", human(eps));
        line(
            &mut chart,
            &[(0.0, eps), (x_max, eps)],
            CEILING.stroke_width(1),
            label,
            None,
        )?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 14)
}

type Pick = fn(&Latency) -> u64;

fn live_latency(live: &[LiveResult], title: &str, path: &Path) -> anyhow::Result<()> {
    let picks: [(&str, Pick); 3] = [
        ("p50", |l| l.p50),
        ("p99", |l| l.p99),
        ("p99.9", |l| l.p999),
    ];
    let lines = draw::lines(&picks, |model, pick| {
        let points = live.iter().enumerate().filter_map(|(i, l)| {
            let f = if model == "pull" { &l.pull } else { &l.push };
            let f = f.as_ref().filter(|f| f.latency_us.count > 0)?;
            Some((i as f64, (pick(&f.latency_us) as f64 / 1e3).max(0.01)))
        });
        points.collect()
    });
    // One slot per rate, evenly spaced and labelled with the rate itself
    // (the rates are few and chosen by hand; a log axis would label
    // neither of them).
    let rates: Vec<u64> = live.iter().map(|l| l.rate).collect();
    let format = |v: &f64| {
        let i = v.round();
        let rate = rates
            .get(i as usize)
            .filter(|_| (v - i).abs() < 1e-6 && i >= 0.0);
        rate.map(|r| rate_text(*r)).unwrap_or_default()
    };
    let x = XAxis {
        range: -0.5..rates.len() as f64 - 0.5,
        desc: "offered rate, events/s",
        labels: rates.len(),
        format: &format,
    };
    per_rate(path, title, x, "latency, ms (log)", &lines)
}

fn live_throughput(r: &Results, path: &Path) -> anyhow::Result<()> {
    let n = r.live.len().max(1);
    svg(path, (960, (260 * n) as u32 + 20), |root| {
        for (live, area) in r.live.iter().zip(root.split_evenly((n, 1)).iter()) {
            let series: Vec<(&str, &Figures)> = [("pull", &live.pull), ("push", &live.push)]
                .into_iter()
                .filter_map(|(m, f)| f.as_ref().map(|f| (m, f)))
                .filter(|(_, f)| !f.timeline.is_empty())
                .collect();
            let rate = rate_text(live.rate);
            let title = format!("Live at {rate} offered: events committed per second");
            throughput_panel(
                area,
                &title,
                &series,
                Some(("offered rate".to_string(), live.rate as f64)),
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_a_cumulative_timeline() {
        let t = [(0.5, 50), (1.0, 100), (2.0, 300), (2.5, 300)];
        assert_eq!(
            rate_series(&t, 1.0),
            vec![(0.0, 100.0), (1.0, 100.0), (1.0, 200.0), (2.0, 200.0)]
        );
        assert_eq!(window_for(&t), 0.25);
        assert!(rate_series(&[], 1.0).is_empty());
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(20_000.0), "20k");
        assert_eq!(human(1_234_567.0), "1.23M");
        assert_eq!(human(512.0), "512");
        assert_eq!(human(2.5), "2.5");
    }
}
