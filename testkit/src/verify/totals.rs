//! The totals-only mode, for runs too large to hold every event in memory
//! (the benchmark's): a database against the producer's stats file.

use std::fmt::Display;
use std::path::Path;

use common::stats::ProducerStats;
use serde::{Deserialize, Serialize};
use store::Store;

/// One comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// `backlog`, `live-20000`, ...
    pub phase: String,
    /// `pull`, `push`, or `producer`.
    pub model: String,
    pub what: String,
    /// What the producer's stats say.
    pub expected: String,
    /// What the database holds.
    pub actual: String,
    pub pass: bool,
}

impl Check {
    pub fn new(phase: &str, model: &str, what: &str, expected: String, actual: String) -> Check {
        let (phase, model, what) = (phase.into(), model.into(), what.into());
        let pass = expected == actual;
        Check {
            phase,
            model,
            what,
            expected,
            actual,
            pass,
        }
    }

    /// `PASS backlog/pull events: 100 (expected 100)`.
    pub fn line(&self) -> String {
        let (verdict, c) = (if self.pass { "PASS" } else { "FAIL" }, self);
        let (phase, model, what) = (&c.phase, &c.model, &c.what);
        format!(
            "{verdict} {phase}/{model} {what}: {} (expected {})",
            c.actual, c.expected
        )
    }
}

/// `PASS` when every check passed (and there was at least one).
pub fn verdict<'a>(checks: impl IntoIterator<Item = &'a Check>) -> &'static str {
    let mut checks = checks.into_iter().peekable();
    let pass = checks.peek().is_some() && checks.all(|c| c.pass);
    if pass { "PASS" } else { "FAIL" }
}

/// The producer itself: everything it was asked to send was acknowledged.
pub fn check_producer(phase: &str, p: &ProducerStats) -> Check {
    let requested = p.events_requested.to_string();
    let acked = p.events_acknowledged.to_string();
    Check::new(phase, "producer", "events acknowledged", requested, acked)
}

/// Totals-only verification of one database against the producer's stats:
/// same count, every id once, same amount sum, same id checksum, no dead
/// letters.
pub fn totals(phase: &str, model: &str, db: &Path, p: &ProducerStats) -> Vec<Check> {
    let check = |what: &str, expected: &dyn Display, actual: &dyn Display| {
        Check::new(phase, model, what, expected.to_string(), actual.to_string())
    };
    if !db.is_file() {
        return vec![check("database exists", &db.display(), &"missing")];
    }
    let s = match Store::open(db).and_then(|s| s.summary()) {
        Ok(s) => s,
        Err(e) => {
            let error = format!("error: {e}");
            return vec![check("database readable", &"a banking store", &error)];
        }
    };
    let (acked, checksum) = (p.events_acknowledged, p.id_checksum.to_ascii_lowercase());
    vec![
        check("events", &acked, &s.events),
        check("distinct ids", &acked, &s.distinct_event_ids),
        check("amount sum", &p.amount_minor_sum, &s.amount_minor_sum),
        check("id checksum", &checksum, &s.id_checksum.hex()),
        check("dead letters", &0, &s.dead_letters),
    ]
}
