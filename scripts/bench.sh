#!/usr/bin/env bash
# The push-vs-pull benchmark, end to end: install, build, broker, then
# `bench run` with every option of this script's command line, untouched.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench.sh [OPTIONS OF bench run...]
       scripts/bench.sh --claims [OPTIONS OF bench claims...]
       scripts/bench.sh --verify-only DIR
       scripts/bench.sh -h | --help

Runs the push-vs-pull benchmark and writes its report:
  1. installs what the build needs (scripts/setup.sh) and builds the release
     binaries, unless BIN_DIR names a directory that has them;
  2. gets a broker through scripts/broker.sh (KAFKA_BROKERS if it answers,
     else as BROKER_KIND says; see scripts/broker.sh --help), and stops it at
     the end only if this script started it;
  3. runs `bench run --brokers ... --broker-run-dir ... --bin-dir ...`
     followed by every option given here, untouched (given later, they win):
     the live phase at several rates, the backlog phase with the ceilings,
     verification of every database after each phase (PASS/FAIL per check),
     then report.md, results.json and SVG pictures in the output directory
     (default bench-results/<UTC time>/ in the repository).
Exits non-zero if any check or step fails.

This script's own options, alone as its first argument:
  --claims            run `bench claims` instead of `bench run`: each claim
                      made about push against pull tested by a measurement
                      (steady rates from 1 to 100k events/s, idle CPU,
                      bursts, a step, a slow sink, 1-3 instances per group,
                      a consumer outage), every phase verified, claims.md
                      with a verdict per claim (~12 minutes on 2 cores)
  --verify-only DIR   re-run the verification of an earlier run's databases
                      against its producer stats (`bench verify DIR`); prints
                      PASS/FAIL per check, exits non-zero on any FAIL; no
                      broker needed
  -h, --help          this text, then the options of `bench run`

Environment:
  BIN_DIR             use the binaries in this directory; no cargo build
  KAFKA_BROKERS, BROKER_KIND, BROKER_PORT, RUN_DIR
                      broker choice, as for scripts/broker.sh
  BENCH_RESULTS       where the default output directory is made

What each figure means, how it is measured, and past runs:
docs/benchmark.md. Other commands of the bench binary (report redraw, single
ceilings, query timing): bench --help.
USAGE
}

# shellcheck source=scripts/lib/front.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/front.sh"

cmdline="scripts/bench.sh${*:+ $(printf '%q ' "$@")}"
cmdline=${cmdline% }
mode=run
subcommand=run
case "${1:-}" in
    -h | --help) mode=help ;;
    --claims) subcommand=claims && shift ;;
    --verify-only=*) mode=verify verify_dir=${1#*=} && shift ;;
    --verify-only)
        [[ $# -ge 2 ]] || die "--verify-only needs a directory"
        mode=verify verify_dir=$2 && shift 2
        ;;
esac
if [[ $mode == verify ]]; then
    (($# == 0)) || die "--verify-only takes one directory and nothing else"
    [[ -d "$verify_dir" ]] || die "--verify-only $verify_dir: no such directory"
fi

default_bin_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
if [[ -z "${BIN_DIR:-}" && "$mode" == help && -x "$default_bin_dir/bench" ]]; then
    BIN_DIR=$default_bin_dir
elif [[ -z "${BIN_DIR:-}" ]]; then
    # Debian packages librdkafka's build needs, when missing (the broker:
    # scripts/broker.sh start installs it).
    "$REPO_ROOT/scripts/setup.sh" --no-broker >&2 || die "scripts/setup.sh failed"
fi
packages=(bench testkit)
[[ "$mode" != run ]] || packages+=(producer consumer-pull consumer-push)
release_bins "${packages[@]}"
BENCH="$BIN_DIR/bench"
case "$mode" in
    help)
        usage
        printf '\nOptions of `bench run`:\n\n'
        exec "$BENCH" run --help
        ;;
    verify) exec "$BENCH" verify "$verify_dir" ;;
esac

# A mistyped option fails here, before a broker is started.
"$BENCH" "$subcommand" --dry-run "$@" || exit

broker_place
started_broker=no
stop_broker() {
    if [[ "$started_broker" == yes ]]; then
        log "stopping the broker this run started"
        "$REPO_ROOT/scripts/broker.sh" stop || true
        started_broker=no
    fi
}
trap stop_broker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fresh=()
if "$REPO_ROOT/scripts/broker.sh" status >/dev/null 2>&1; then
    log "a broker started earlier by scripts/broker.sh is running; using it and leaving it running"
else
    started_broker=yes
    # A local Kafka this run starts begins with an empty log: earlier runs'
    # topics would only take disk and slow its start.
    fresh=(--fresh)
fi
brokers=$("$REPO_ROOT/scripts/broker.sh" start --no-topic "${fresh[@]}" | tail -n 1)
[[ -n "$brokers" ]] || die "scripts/broker.sh start printed no address"
kind=$(cat "$RUN_DIR/kind" 2>/dev/null || echo unknown)
log "broker: $brokers ($kind, $(cat "$RUN_DIR/version" 2>/dev/null || echo unknown))"

# The embedded broker holds every fetch for the full fetch.wait.max.ms even
# when data is there, so the consumers' default (100 ms, right for Apache
# Kafka, which answers as soon as data arrives) would be its latency floor.
# Given first, so a --consumer-property of the user's own comes after it.
per_broker=()
if [[ "$kind" == nisshi ]]; then
    per_broker=(--consumer-property fetch.wait.max.ms=5)
    log "embedded broker: the consumers get fetch.wait.max.ms=5 (it holds every fetch that long)"
fi

export BENCH_RESULTS="${BENCH_RESULTS:-$REPO_ROOT/bench-results}"
"$BENCH" "$subcommand" --brokers "$brokers" --broker-run-dir "$RUN_DIR" --bin-dir "$BIN_DIR" \
    --command-line "$cmdline" "${per_broker[@]}" "$@"
