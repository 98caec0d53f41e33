//! The push-vs-pull benchmark of the banking pipeline, behind the `bench`
//! binary that `scripts/bench.sh` calls.
//!
//! A run ([`run::run`]) drives the real binaries (`producer`,
//! `consumer-pull`, `consumer-push`) as child processes against one broker,
//! so every figure is what a user would get from those binaries:
//!
//! 1. **live**, first, while the broker holds little (an in-memory
//!    engine slows down as it fills): at each of several rates, both
//!    consumers run while the producer emits at that rate for a fixed time,
//!    and report per-event end-to-end latency;
//! 2. **backlog**: the producer writes N events as fast as it can; each
//!    consumer then drains them alone into its own fresh database; the two
//!    ceilings that bound a consumer are measured on the same events
//!    ([`ceilings`]), and the producer against its own raw ceiling
//!    (pre-encoded payloads, half right before the producer, half after);
//! 3. **verification** after each phase ([`verify`]): every database holds
//!    exactly the acknowledged events;
//! 4. **report** ([`results`], [`report`], [`plots`]): `results.json`,
//!    `report.md` and SVG pictures in the output directory.
//!
//! Every process is started with command lines built from typed arguments
//! ([`argv`], [`settings`]); `bench claims` ([`claims`]) tests each
//! push-vs-pull claim with a verdict. Both run their phases the same way
//! ([`phase`]). The method and the history of runs:
//! `docs/benchmark.md`.

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
