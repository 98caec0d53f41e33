//! Not written yet.

use anyhow::Result;

use crate::{Config, Outcome, Scenario};

/// Runs the scenario.
pub fn run(_cfg: &Config) -> Result<Vec<Outcome>> {
    Ok(vec![Outcome::skipped(
        Scenario::Kill9,
        "all",
        "not implemented yet".into(),
    )])
}
