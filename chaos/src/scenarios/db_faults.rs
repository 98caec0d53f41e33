//! Not written yet.

use anyhow::Result;

use crate::{Config, Outcome, Scenario};

/// Lock.
pub fn lock(_cfg: &Config) -> Result<Vec<Outcome>> {
    Ok(vec![Outcome::skipped(
        Scenario::DbLock,
        "all",
        "not implemented yet".into(),
    )])
}

/// Disk full.
pub fn disk_full(_cfg: &Config) -> Result<Vec<Outcome>> {
    Ok(vec![Outcome::skipped(
        Scenario::DiskFull,
        "all",
        "not implemented yet".into(),
    )])
}
