#!/usr/bin/env bash
# Fuzzes the decoder and the store's balance rule with proptest
# (consumer-core/tests/fuzz.rs) for a stated time (docs/operations.md):
# rounds of PROPTEST_CASES cases with fresh seeds until FUZZ_SECS have
# passed; a failure's seed is saved in consumer-core/tests/
# fuzz.proptest-regressions (commit it). The dev profile: dependencies are
# built with opt-level 2 there, so a release build would add little.
#
#   scripts/fuzz.sh              # 60 s per property
#   FUZZ_SECS=600 PROPTEST_CASES=2000 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export FUZZ_SECS="${FUZZ_SECS:-60}"
export PROPTEST_CASES="${PROPTEST_CASES:-256}"
# One property at a time, each with the whole budget.
exec cargo test -p consumer-core --test fuzz -- --test-threads=1 --nocapture "$@"
