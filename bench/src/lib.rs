//! The push-vs-pull benchmark of the banking pipeline, behind the `bench`
//! binary that `scripts/bench.sh` calls.
//!
//! A run ([`run::run`]) drives the real binaries as child processes
//! against one broker: **live** phases at several rates, the **backlog**
//! drained by each consumer alone with the [`ceilings`] that bound it,
//! **verification** of every database ([`verify`]), and the **report**
//! ([`results`], [`report`], [`plots`]). `bench claims` ([`claims`]) tests
//! each push-vs-pull claim with a verdict. Both run their phases the same
//! way ([`phase`]), with command lines built from typed arguments
//! ([`argv`], [`settings`]). The method and the runs: `docs/benchmark.md`.

pub mod argv;
pub mod ceilings;
pub mod claims;
pub mod cli;
pub mod defaults;
pub mod machine;
pub mod phase;
pub mod plots;
pub mod queries;
pub mod report;
pub mod results;
pub mod run;
pub mod settings;
pub mod stats;
pub mod topics;
pub mod verify;
