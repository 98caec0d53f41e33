//! Figures of a phase's timeline ([`crate::phase::sampler`]): the largest
//! lag and memory, and how evenly the partitions caught up.

use crate::phase::sampler::{LagPoint, Sample};

/// The largest total lag of `model`'s group over the samples.
pub fn max_lag(samples: &[Sample], model: &str) -> i64 {
    samples
        .iter()
        .flat_map(|s| s.lag.iter().filter(|l| l.model == model))
        .map(LagPoint::total)
        .max()
        .unwrap_or(0)
}

/// The highest `VmRSS` sampled of the processes whose name starts with
/// `model`.
pub fn max_rss(samples: &[Sample], model: &str) -> u64 {
    samples
        .iter()
        .flat_map(|s| s.procs.iter().filter(|p| p.name.starts_with(model)))
        .map(|p| p.rss_bytes)
        .max()
        .unwrap_or(0)
}

/// Fairness between partitions while `model`'s group lags: for each
/// partition, the last moment its lag was above zero; the spread between
/// the first and the last partition to catch up, in seconds, over the
/// samples after `from` (seconds). `None` when no partition lagged.
pub fn catch_up_spread(samples: &[Sample], model: &str, from: f64) -> Option<f64> {
    let mut last: Vec<Option<f64>> = Vec::new();
    for s in samples.iter().filter(|s| s.t >= from) {
        for l in s.lag.iter().filter(|l| l.model == model) {
            if last.len() < l.partitions.len() {
                last.resize(l.partitions.len(), None);
            }
            for (p, &lag) in l.partitions.iter().enumerate() {
                if lag > 0 {
                    last[p] = Some(s.t);
                }
            }
        }
    }
    let times = last.into_iter().flatten();
    let (lo, hi) = times.fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    (hi >= lo).then_some(hi - lo)
}

/// At the moment of `model`'s largest total lag, the largest partition's
/// lag over the mean partition's (1.0: evenly spread).
pub fn lag_skew_at_peak(samples: &[Sample], model: &str) -> Option<f64> {
    let peak = samples
        .iter()
        .flat_map(|s| s.lag.iter().filter(|l| l.model == model))
        .max_by_key(|l| l.total())?;
    let n = peak.partitions.len() as f64;
    let total = peak.total() as f64;
    if total <= 0.0 || n == 0.0 {
        return None;
    }
    let max = peak.partitions.iter().copied().max().unwrap_or(0) as f64;
    Some(max / (total / n))
}

/// Seconds from `from` until `model`'s group lag is 0 in a sample (after
/// having been above 0, or at once).
pub fn drained_after(samples: &[Sample], model: &str, from: f64) -> Option<f64> {
    let mut seen_lag = false;
    for s in samples.iter().filter(|s| s.t >= from) {
        let Some(l) = s.lag.iter().find(|l| l.model == model) else {
            continue;
        };
        if l.total() > 0 {
            seen_lag = true;
        } else if seen_lag {
            return Some(s.t - from);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::sampler::ProcPoint;

    fn sample(t: f64, pull: &[i64], rss: u64) -> Sample {
        Sample {
            t,
            procs: vec![ProcPoint {
                name: "pull".into(),
                rss_bytes: rss,
                cpu_seconds: t,
            }],
            lag: vec![LagPoint {
                model: "pull".into(),
                partitions: pull.to_vec(),
            }],
        }
    }

    #[test]
    fn lag_figures_follow_the_samples() {
        let s = vec![
            sample(0.0, &[0, 0, 0], 10),
            sample(1.0, &[10, 20, 30], 30),
            sample(2.0, &[0, 5, 10], 20),
            sample(3.0, &[0, 0, 4], 20),
            sample(4.0, &[0, 0, 0], 20),
        ];
        assert_eq!(max_lag(&s, "pull"), 60);
        assert_eq!(max_lag(&s, "push"), 0);
        assert_eq!(max_rss(&s, "pull"), 30);
        // Partition 0 caught up after 1.0 s, partition 2 after 3.0 s.
        assert_eq!(catch_up_spread(&s, "pull", 0.0), Some(2.0));
        assert_eq!(catch_up_spread(&s, "push", 0.0), None);
        // At the peak (60 over 3 partitions), the largest is 30: 1.5x.
        assert_eq!(lag_skew_at_peak(&s, "pull"), Some(1.5));
    }
}
