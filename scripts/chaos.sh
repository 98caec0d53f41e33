#!/usr/bin/env bash
# The fault suite (chaos/README.md: scenarios, figures, brokers): builds the
# release binaries (unless BIN_DIR names a directory that has them), then
# runs the `chaos` harness with these arguments. Exit status: 0 all passed,
# 1 a scenario failed, 2 the harness could not run.
#
#   scripts/chaos.sh                                   # every scenario, 1,000,000 events each
#   scripts/chaos.sh --events 50000 --scenarios kill9,bad-messages --consumers pull
#   BIN_DIR=target/release scripts/chaos.sh --help     # all flags
set -euo pipefail

DIE_STATUS=2
# shellcheck source=scripts/lib/front.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/front.sh"
release_bins chaos producer consumer-pull consumer-push
exec "$BIN_DIR/chaos" "$@"
