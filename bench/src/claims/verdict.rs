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

/// What the figures say about a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The model the claim favours is better by more than the noise.
    Holds,
    DoesNotHold,
    NoDifference,
}

impl Verdict {
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
    if values.len() < 2 {
        return None;
    }
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    Some(relative(max, min))
}

/// `|a - b|` over the smaller of the two (0 when both are 0; a large
/// number when only one is).
pub fn relative(a: f64, b: f64) -> f64 {
    let lo = a.abs().min(b.abs());
    let d = (a - b).abs();
    if d == 0.0 {
        0.0
    } else if lo == 0.0 {
        f64::INFINITY
    } else {
        d / lo
    }
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// One figure of both models, each measured one or more times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub pull: Vec<f64>,
    pub push: Vec<f64>,
}

impl Pair {
    pub fn side(&mut self, model: &str) -> &mut Vec<f64> {
        if model == "pull" {
            &mut self.pull
        } else {
            &mut self.push
        }
    }

    pub fn pull_mean(&self) -> f64 {
        mean(&self.pull)
    }

    pub fn push_mean(&self) -> f64 {
        mean(&self.push)
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
        relative(self.pull_mean(), self.push_mean())
    }

    /// The verdict on a claim that `favours` is better at this figure.
    /// Without a noise measurement, any difference counts.
    pub fn verdict(&self, favours: &str, better: Better) -> Verdict {
        let (pull, push) = (self.pull_mean(), self.push_mean());
        if self.difference() <= self.noise().unwrap_or(0.0) {
            return Verdict::NoDifference;
        }
        let pull_better = match better {
            Better::Lower => pull < push,
            Better::Higher => pull > push,
        };
        let winner = if pull_better { "pull" } else { "push" };
        if winner == favours {
            Verdict::Holds
        } else {
            Verdict::DoesNotHold
        }
    }
}

/// Several verdicts on one claim (one per rate, per figure) as one: the
/// most frequent; a tie, or no verdict at all, is no difference.
pub fn majority(verdicts: &[Verdict]) -> Verdict {
    let count = |v: Verdict| verdicts.iter().filter(|&&x| x == v).count();
    let (h, d, n) = (
        count(Verdict::Holds),
        count(Verdict::DoesNotHold),
        count(Verdict::NoDifference),
    );
    if h > d && h > n {
        Verdict::Holds
    } else if d > h && d > n {
        Verdict::DoesNotHold
    } else {
        Verdict::NoDifference
    }
}

/// "holds 1, does not hold 2, no difference 3" for a list of verdicts.
pub fn tally(verdicts: &[Verdict]) -> String {
    let count = |v: Verdict| verdicts.iter().filter(|&&x| x == v).count();
    format!(
        "holds at {}, does not hold at {}, no difference at {}",
        count(Verdict::Holds),
        count(Verdict::DoesNotHold),
        count(Verdict::NoDifference)
    )
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
