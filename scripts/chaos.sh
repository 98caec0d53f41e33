#!/usr/bin/env bash
# The fault suite (issue 6): kill -9, SIGTERM, a second instance, broker
# outages, bad messages, a locked or full database, bad command lines. Builds
# the release binaries (unless BIN_DIR names a directory that has them), then
# runs the `chaos` harness, which starts Apache Kafka itself (one JVM for the
# run, plus a private one for the scenarios that stop the broker or start it
# late; data and logs under --out) and prints one line of figures per
# scenario and consumer. Exit status: 0 all passed, 1 a scenario failed (an
# event lost or duplicated, a balance wrong, a check missed), 2 the harness
# could not run.
#
#   scripts/chaos.sh                                   # every scenario, 1,000,000 events each
#   scripts/chaos.sh --events 50000 --scenarios kill9,bad-messages --consumers pull
#   scripts/chaos.sh --broker nisshi --events 100000 --scenarios kill9,sigterm
#   BIN_DIR=target/release scripts/chaos.sh --help     # all flags
#
# Apache Kafka comes from scripts/setup.sh (Java and the server's jars from
# Maven Central, in $KAFKA_HOME_DIR or ~/.cache/banking-pipeline/kafka-<version>);
# without it the scenarios that need a broker are reported as SKIPPED.
# --broker nisshi runs the scenarios on Nisshi, the embedded Rust broker
# (testkit/src/nisshi.rs pins its version; scripts/setup.sh installs it), a new
# one per scenario, in memory, and on SQLite for outage (its log survives the
# restart); no-broker and offset-gaps still need Apache Kafka.
# disk-full mounts small tmpfs file systems and needs root; without root it
# is reported as SKIPPED.
set -euo pipefail

DIE_STATUS=2
# shellcheck source=scripts/lib/front.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/front.sh"
release_bins chaos producer consumer-pull consumer-push
exec "$BIN_DIR/chaos" "$@"
