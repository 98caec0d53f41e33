//! How figures are written in the claims table.

use crate::claims::verdict::Pair;

/// A relative figure as a percentage; "∞" when infinite.
pub fn pct(x: f64) -> String {
    if x.is_infinite() {
        "∞".into()
    } else {
        format!("{:.0}%", x * 100.0)
    }
}

pub(super) fn noise_text(p: &Pair) -> String {
    match p.noise() {
        Some(n) => format!("spread {}", pct(n)),
        None => "no repeat".into(),
    }
}

/// `v` with few significant digits.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A rate as `1/s`, `20k/s`.
pub fn rate_text(rate: u64) -> String {
    if rate >= 1000 && rate % 1000 == 0 {
        format!("{}k/s", rate / 1000)
    } else {
        format!("{rate}/s")
    }
}

/// Several figures: `1.20, 1.31`.
pub fn values(v: &[f64]) -> String {
    v.iter().map(|x| num(*x)).collect::<Vec<_>>().join(", ")
}

/// `items` joined with `sep`.
pub fn joined(items: impl Iterator<Item = String>, sep: &str) -> String {
    items.collect::<Vec<_>>().join(sep)
}
