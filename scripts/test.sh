#!/usr/bin/env bash
# The project's test command: installs what is missing (scripts/setup.sh),
# then `cargo test --workspace` with the extra arguments (e.g. -p
# consumer-pull). Tests start their own brokers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
exec cargo test --workspace "$@"
