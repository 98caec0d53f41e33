//! Integration tests of the banking store, one binary (one link) with a
//! module per concern.

mod balances;
mod checkpoints;
mod commit;
mod common;
mod failures;
mod offsets;
mod open;
mod queries;
