//! Verification: each database holds exactly the events the producer says
//! the broker acknowledged — same count, every id once, same amount sum,
//! same id checksum — and nothing went to the dead letters.
//!
//! It works from files only (a phase directory's `producer.json` and its
//! `pull.db` / `push.db`), so `bench verify DIR` repeats it on an old run.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use store::Store;

use crate::stats::{ProducerStats, read_json};

/// The two models, in report order.
pub const MODELS: [&str; 2] = ["pull", "push"];

/// One comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// `backlog`, `live-20000`, ...
    pub phase: String,
    /// `pull`, `push`, or `producer`.
    pub model: String,
    /// What is compared.
    pub what: String,
    /// What the producer's stats say.
    pub expected: String,
    /// What the database holds.
    pub actual: String,
    /// Equal.
    pub pass: bool,
}

impl Check {
    fn new(phase: &str, model: &str, what: &str, expected: String, actual: String) -> Check {
        let pass = expected == actual;
        Check {
            phase: phase.into(),
            model: model.into(),
            what: what.into(),
            expected,
            actual,
            pass,
        }
    }

    /// `PASS backlog/pull events: 100 (expected 100)`.
    pub fn line(&self) -> String {
        format!(
            "{} {}/{} {}: {} (expected {})",
            if self.pass { "PASS" } else { "FAIL" },
            self.phase,
            self.model,
            self.what,
            self.actual,
            self.expected
        )
    }
}

/// `PASS` when every check passed (and there was at least one).
pub fn verdict(checks: &[Check]) -> &'static str {
    if !checks.is_empty() && checks.iter().all(|c| c.pass) {
        "PASS"
    } else {
        "FAIL"
    }
}

/// `PASS`/`FAIL` for one phase and model.
pub fn verdict_of(checks: &[Check], phase: &str, model: &str) -> &'static str {
    let mine: Vec<Check> = checks
        .iter()
        .filter(|c| c.phase == phase && (c.model == model || c.model == "producer"))
        .cloned()
        .collect();
    verdict(&mine)
}

/// The producer itself: everything it was asked to send was acknowledged.
pub fn check_producer(phase: &str, p: &ProducerStats) -> Check {
    Check::new(
        phase,
        "producer",
        "events acknowledged",
        p.events_requested.to_string(),
        p.events_acknowledged.to_string(),
    )
}

/// Compares one database with the producer's stats.
pub fn check_db(phase: &str, model: &str, db: &Path, p: &ProducerStats) -> Vec<Check> {
    if !db.is_file() {
        return vec![Check::new(
            phase,
            model,
            "database exists",
            db.display().to_string(),
            "missing".into(),
        )];
    }
    let summary = Store::open(db).and_then(|s| s.summary());
    let s = match summary {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::new(
                phase,
                model,
                "database readable",
                "a banking store".into(),
                format!("error: {e}"),
            )];
        }
    };
    let acked = p.events_acknowledged.to_string();
    vec![
        Check::new(phase, model, "events", acked.clone(), s.events.to_string()),
        Check::new(
            phase,
            model,
            "distinct ids",
            acked,
            s.distinct_event_ids.to_string(),
        ),
        Check::new(
            phase,
            model,
            "amount sum",
            p.amount_minor_sum.to_string(),
            s.amount_minor_sum.to_string(),
        ),
        Check::new(
            phase,
            model,
            "id checksum",
            p.id_checksum.to_ascii_lowercase(),
            s.id_checksum.hex(),
        ),
        Check::new(
            phase,
            model,
            "dead letters",
            "0".into(),
            s.dead_letters.to_string(),
        ),
    ]
}

/// Verifies one phase directory: its producer, then each model whose
/// database or stats file is there. The databases are read side by side,
/// one thread each (each read is a full scan on one core; nothing else
/// runs while the benchmark verifies).
pub fn check_phase(dir: &Path) -> anyhow::Result<Vec<Check>> {
    let phase = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let producer: ProducerStats = read_json(&dir.join("producer.json"))?;
    let mut checks = vec![check_producer(&phase, &producer)];
    let per_model: Vec<Vec<Check>> = std::thread::scope(|scope| {
        let running: Vec<_> = MODELS
            .iter()
            .filter_map(|model| {
                let db = dir.join(format!("{model}.db"));
                let expected = db.exists()
                    || dir.join(format!("{model}.json")).exists()
                    || dir.join(format!("{model}.log")).exists();
                let (phase, producer) = (&phase, &producer);
                expected.then(|| scope.spawn(move || check_db(phase, model, &db, producer)))
            })
            .collect();
        running
            .into_iter()
            .map(|t| t.join().expect("a database check panicked"))
            .collect()
    });
    checks.extend(per_model.into_iter().flatten());
    Ok(checks)
}

/// The phase directories of a run (those with a `producer.json`), backlog
/// first, then live phases by rate.
pub fn phase_dirs(run: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run)
        .with_context(|| format!("cannot read {}", run.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("producer.json").is_file())
        .collect();
    dirs.sort_by_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rate = name
            .strip_prefix("live-")
            .and_then(|r| r.parse::<u64>().ok());
        (name != "backlog", rate.unwrap_or(0), name)
    });
    Ok(dirs)
}

/// The checks a run recorded (`verification.json`); none when it has not
/// verified anything yet.
pub fn read_checks(path: &Path) -> anyhow::Result<Vec<Check>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a list of checks", path.display()))
}

/// Verifies every phase of a run directory.
pub fn check_run(run: &Path) -> anyhow::Result<Vec<Check>> {
    let dirs = phase_dirs(run)?;
    anyhow::ensure!(
        !dirs.is_empty(),
        "{} holds no phase directory with a producer.json: not a benchmark run",
        run.display()
    );
    let mut checks = Vec::new();
    for d in dirs {
        checks.extend(check_phase(&d)?);
    }
    Ok(checks)
}
