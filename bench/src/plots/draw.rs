//! The plotting helpers both reports draw with: colours, a line with its
//! legend entry and markers, the legend box, an SVG file.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

pub const PULL: RGBColor = RGBColor(31, 119, 180);
pub const PUSH: RGBColor = RGBColor(214, 39, 40);
pub const CEILING: RGBColor = RGBColor(120, 120, 120);
pub const FONT: &str = "sans-serif";

pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub type Chart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

pub fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e:?}")
}

pub fn color(model: &str) -> RGBColor {
    if model == "pull" { PULL } else { PUSH }
}

/// The pictures drawn, or none, with a warning from `who`: a report
/// without them is still a report.
pub fn drawn(pictures: anyhow::Result<Vec<PathBuf>>, who: &str) -> Vec<PathBuf> {
    pictures.unwrap_or_else(|e| {
        eprintln!("{who}: warning: pictures not drawn: {e:#}");
        Vec::new()
    })
}

pub fn svg(
    path: &Path,
    size: (u32, u32),
    f: impl FnOnce(&Area<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    f(&root)?;
    root.present().map_err(err)
}

/// A linear chart on `area`, `x` against `0..y_hi`, the y values
/// labelled by [`human`].
pub fn linear<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    (x, y_hi): (std::ops::Range<f64>, f64),
    (x_desc, y_desc): (&str, &str),
) -> anyhow::Result<Chart<'a, 'b, RangedCoordf64, RangedCoordf64>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 17))
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size(75)
        .build_cartesian_2d(x, 0.0..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// A line of `points` with its legend entry; with `marker` Some(k), a mark
/// at each point too (0: circle, 1: triangle, else a cross), so that
/// percentiles stay apart where their lines meet.
pub fn line<'a, 'b: 'a, X, Y>(
    chart: &mut Chart<'a, 'b, X, Y>,
    points: &[(f64, f64)],
    style: ShapeStyle,
    label: String,
    marker: Option<usize>,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .draw_series(LineSeries::new(points.iter().copied(), style))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    if let Some(k) = marker {
        let c = style.color;
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
    Ok(())
}

/// (model, percentile label, its index: line width and marker, points).
pub type Line<'a> = (&'a str, &'a str, usize, Vec<(f64, f64)>);

/// For each model and each of `picks` (label, what to pick), the line of
/// its `points`; those without any are left out.
pub fn lines<'a, P>(
    picks: &'a [(&'a str, P)],
    points: impl Fn(&str, &P) -> Vec<(f64, f64)>,
) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    for model in ["pull", "push"] {
        for (k, (label, pick)) in picks.iter().enumerate() {
            let p = points(model, pick);
            if !p.is_empty() {
                lines.push((model, *label, k, p));
            }
        }
    }
    lines
}

/// The x axis of [`per_rate`].
pub struct XAxis<'a, R> {
    pub range: R,
    pub desc: &'a str,
    pub labels: usize,
    pub format: &'a dyn Fn(&f64) -> String,
}

/// Percentile lines against the offered rate on a log y axis.
pub fn per_rate<R>(
    path: &Path,
    title: &str,
    x: XAxis<'_, R>,
    y_desc: &str,
    lines: &[Line<'_>],
) -> anyhow::Result<()>
where
    R: AsRangedCoord<Value = f64>,
    R::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (y_lo, y_hi) = log_bounds(lines.iter().flat_map(|l| l.3.iter().map(|p| p.1)));
    svg(path, (960, 560), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x.range, (y_lo..y_hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(x.labels)
            .x_desc(x.desc)
            .y_desc(y_desc)
            .x_label_formatter(x.format)
            .y_label_formatter(&|v| format!("{v}"))
            .draw()
            .map_err(err)?;
        for (model, label, k, points) in lines {
            let style = ShapeStyle::from(&color(model)).stroke_width(1 + *k as u32);
            line(
                &mut chart,
                points,
                style,
                format!("{model} {label}"),
                Some(*k),
            )?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 13)
    })
}

pub fn legend<'a, 'b: 'a, X: Ranged, Y: Ranged>(
    chart: &mut Chart<'a, 'b, X, Y>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, font_size))
        .draw()
        .map_err(err)
}

/// A log axis's bounds for `values`: from half the smallest (at most 1)
/// to twice the largest.
pub fn log_bounds(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = values.clone().fold(f64::INFINITY, f64::min).min(1.0) / 2.0;
    (lo, values.fold(1.0, f64::max) * 2.0)
}

/// 1234567 -> "1.23M", 20000 -> "20k".
pub fn human(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = crate::claims::analysis::num(x);
    // 20.0k and 1.50M without their trailing zeros; 100 keeps its own.
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{suffix}")
}
