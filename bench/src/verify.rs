//! Verification of a run: each database holds exactly the events the
//! producer says the broker acknowledged, compared on totals only
//! (testkit's [`totals`]): a 100M-event backlog does not fit in memory.
//!
//! It works from files only (a phase directory's `producer.json` and its
//! `pull.db` / `push.db`), so `bench verify DIR` repeats it on an old run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
pub use testkit::verify::{Check, check_producer, totals, verdict};

use crate::cli::CheckPhaseArgs;
use crate::run::bench_child;
use crate::stats::{ProducerStats, read_stats};

/// Verifies a phase in a child process (`bench check-phase`): a summary
/// scan of a large database grows SQLite's page cache, and every process
/// started afterwards would inherit that peak in its own `ru_maxrss`
/// (Linux carries the high-water mark across fork and exec). Keeping the
/// orchestrator small keeps the children's peak RSS their own.
pub fn phase_in_child(dir: &Path, limit: Duration) -> anyhow::Result<Vec<Check>> {
    let json = dir.join("checks.json");
    let args = CheckPhaseArgs {
        dir: dir.to_path_buf(),
        json: json.clone(),
    };
    let f = bench_child(dir, "verify", "check-phase", &args, limit)?;
    anyhow::ensure!(f.ok(), "{}", f.failure());
    read_checks(&json)
}

pub const MODELS: [&str; 2] = ["pull", "push"];

pub fn verdict_of(checks: &[Check], phase: &str, model: &str) -> &'static str {
    verdict(
        checks
            .iter()
            .filter(|c| c.phase == phase && (c.model == model || c.model == "producer")),
    )
}

/// Verifies one phase directory: its producer, then each model whose
/// database, stats file or log is there, one thread each (a full scan is
/// one core's work).
pub fn check_phase(dir: &Path) -> anyhow::Result<Vec<Check>> {
    let phase = file_name(dir);
    let producer: ProducerStats = read_stats(&dir.join("producer.json"))?;
    let mut checks = vec![check_producer(&phase, &producer)];
    let there = |model: &str| {
        ["db", "json", "log"]
            .iter()
            .any(|x| dir.join(format!("{model}.{x}")).exists())
    };
    std::thread::scope(|scope| {
        let running: Vec<_> = MODELS
            .into_iter()
            .filter(|model| there(model))
            .map(|model| {
                let (phase, producer, db) = (&phase, &producer, dir.join(format!("{model}.db")));
                scope.spawn(move || totals(phase, model, &db, producer))
            })
            .collect();
        for t in running {
            checks.extend(t.join().expect("a database check panicked"));
        }
    });
    Ok(checks)
}

pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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
        let name = file_name(p);
        let rate = name
            .strip_prefix("live-")
            .and_then(|r| r.parse::<u64>().ok());
        (name != "backlog", rate.unwrap_or(0), name)
    });
    Ok(dirs)
}

/// `verification.json`; none when nothing was verified yet.
pub fn read_checks(path: &Path) -> anyhow::Result<Vec<Check>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a list of checks", path.display()))
}

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
