#!/usr/bin/env bash
# Fuzzes the decoder (decode -> validate -> store rows) and the store's
# balance rule with proptest (consumer-core/tests/fuzz.rs) for a stated
# time, on stable Rust.
#
#   scripts/fuzz.sh              # 60 s per property
#   FUZZ_SECS=600 scripts/fuzz.sh
#   PROPTEST_CASES=2000 scripts/fuzz.sh   # cases per round (default 256)
#
# Each property runs rounds of PROPTEST_CASES cases with fresh seeds until
# FUZZ_SECS have passed, then prints "fuzz <property>: N executions in T s".
# A failure is shrunk to a minimal case, its seed saved in
# consumer-core/tests/fuzz.proptest-regressions (commit it: every later run,
# `cargo test` included, replays it first) and the script exits non-zero.
# The dev profile: dependencies (SQLite, prost) are built with opt-level 2
# there (Cargo.toml), so a release build would add little but a long compile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export FUZZ_SECS="${FUZZ_SECS:-60}"
export PROPTEST_CASES="${PROPTEST_CASES:-256}"
# One property at a time, each with the whole budget.
exec cargo test -p consumer-core --test fuzz -- --test-threads=1 --nocapture "$@"
