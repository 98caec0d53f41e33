#!/usr/bin/env bash
# The project's test command: installs what is missing (scripts/setup.sh),
# then runs every test of the workspace. Tests start their own brokers
# (Apache Kafka from the jars setup.sh installs, one JVM per test process
# plus private ones for the tests that stop it; librdkafka's mock cluster
# in-process for a few hermetic tests).
# Extra arguments go to `cargo test`, e.g. scripts/test.sh -p consumer-pull.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
exec cargo test --workspace "$@"
