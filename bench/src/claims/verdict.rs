//! Verdicts: does a measured difference between pull and push support a
//! claim, contradict it, or stay within the run-to-run noise?
//!
//! The noise of a figure is measured, not assumed: the same experiment run
//! twice (or an interval measured in two halves) gives each model two
//! values; the relative spread `|a - b| / min(a, b)` of the model that
//! moved most is the noise. A difference between pull and push (their
//! means, relative to the smaller) within that spread is "no difference".

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Better {
    Lower,
    Higher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The model the claim favours is better by more than the noise.
    Holds,
    DoesNotHold,
    NoDifference,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Holds, Verdict::DoesNotHold, Verdict::NoDifference];

    pub fn text(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::NoDifference => "no difference within run-to-run noise",
        }
    }
}

/// Two measurements of one model's figure (repeats, or halves).
pub fn spread(values: &[f64]) -> Option<f64> {
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    (values.len() >= 2).then(|| relative(max, min))
}

/// `|a - b|` over the smaller of the two (0 when both are 0; a large
/// number when only one is).
pub fn relative(a: f64, b: f64) -> f64 {
    let d = (a - b).abs();
    match a.abs().min(b.abs()) {
        _ if d == 0.0 => 0.0,
        0.0 => f64::INFINITY,
        lo => d / lo,
    }
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// One figure of both models, each measured one or more times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub pull: Vec<f64>,
    pub push: Vec<f64>,
}

impl Pair {
    pub fn side(&mut self, model: &str) -> &mut Vec<f64> {
        match model {
            "pull" => &mut self.pull,
            _ => &mut self.push,
        }
    }

    pub fn values(&self, model: &str) -> &[f64] {
        match model {
            "pull" => &self.pull,
            _ => &self.push,
        }
    }

    pub fn mean(&self, model: &str) -> f64 {
        mean(self.values(model))
    }

    /// The noise: the larger of the two models' relative spreads; `None`
    /// when neither was measured twice.
    pub fn noise(&self) -> Option<f64> {
        match (spread(&self.pull), spread(&self.push)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn difference(&self) -> f64 {
        relative(self.mean("pull"), self.mean("push"))
    }

    /// The verdict on a claim that `favours` is better at this figure.
    /// Without a noise measurement, any difference counts.
    pub fn verdict(&self, favours: &str, better: Better) -> Verdict {
        if self.difference() <= self.noise().unwrap_or(0.0) {
            return Verdict::NoDifference;
        }
        let (pull, push) = (self.mean("pull"), self.mean("push"));
        let pull_better = match better {
            Better::Lower => pull < push,
            Better::Higher => pull > push,
        };
        if pull_better == (favours == "pull") {
            Verdict::Holds
        } else {
            Verdict::DoesNotHold
        }
    }
}

/// How many of `verdicts` are each of [`Verdict::ALL`].
fn counts(verdicts: &[Verdict]) -> [usize; 3] {
    Verdict::ALL.map(|v| verdicts.iter().filter(|&&x| x == v).count())
}

/// Several verdicts on one claim (one per rate, per figure) as one: the
/// most frequent; a tie, or no verdict at all, is no difference.
pub fn majority(verdicts: &[Verdict]) -> Verdict {
    match counts(verdicts) {
        [h, d, n] if h > d && h > n => Verdict::Holds,
        [h, d, n] if d > h && d > n => Verdict::DoesNotHold,
        _ => Verdict::NoDifference,
    }
}

/// "holds at 1, does not hold at 2, no difference at 3".
pub fn tally(verdicts: &[Verdict]) -> String {
    let [h, d, n] = counts(verdicts);
    format!("holds at {h}, does not hold at {d}, no difference at {n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(pull: &[f64], push: &[f64]) -> Pair {
        Pair {
            pull: pull.to_vec(),
            push: push.to_vec(),
        }
    }

    #[test]
    fn a_difference_within_the_spread_is_no_difference() {
        // Pull 10 and 12 (20% spread), push 11 and 11: means 11 vs 11.
        let p = pair(&[10.0, 12.0], &[11.0, 11.0]);
        assert_eq!(p.noise(), Some(0.2));
        assert_eq!(p.verdict("push", Better::Lower), Verdict::NoDifference);
        // Push 5 and 5.5: 120% lower than pull's 11, beyond a 20% spread.
        let p = pair(&[10.0, 12.0], &[5.0, 5.5]);
        assert_eq!(p.verdict("push", Better::Lower), Verdict::Holds);
        assert_eq!(p.verdict("pull", Better::Lower), Verdict::DoesNotHold);
        assert_eq!(p.verdict("pull", Better::Higher), Verdict::Holds);
    }

    #[test]
    fn without_repeats_any_difference_counts() {
        let p = pair(&[10.0], &[10.5]);
        assert_eq!(p.noise(), None);
        assert_eq!(p.verdict("pull", Better::Lower), Verdict::Holds);
        assert_eq!(
            pair(&[3.0], &[3.0]).verdict("pull", Better::Lower),
            Verdict::NoDifference
        );
    }

    #[test]
    fn relative_differences() {
        assert_eq!(relative(0.0, 0.0), 0.0);
        assert!(relative(0.0, 1.0).is_infinite());
        assert_eq!(relative(2.0, 3.0), 0.5);
        assert_eq!(spread(&[1.0]), None);
        assert_eq!(spread(&[4.0, 2.0, 3.0]), Some(1.0));
    }

    #[test]
    fn the_majority_decides_and_a_tie_is_no_difference() {
        use Verdict::*;
        assert_eq!(majority(&[Holds, Holds, NoDifference]), Holds);
        assert_eq!(majority(&[Holds, DoesNotHold]), NoDifference);
        assert_eq!(majority(&[DoesNotHold, DoesNotHold, Holds]), DoesNotHold);
        assert_eq!(majority(&[]), NoDifference);
        assert_eq!(
            tally(&[Holds, NoDifference, NoDifference]),
            "holds at 1, does not hold at 0, no difference at 2"
        );
    }
}
