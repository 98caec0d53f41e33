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

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
log() { printf 'bench.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

cmdline="scripts/bench.sh${*:+ $(printf '%q ' "$@")}"
cmdline=${cmdline% }
mode=run
subcommand=run
case "${1:-}" in
    -h | --help) mode=help ;;
    --claims)
        subcommand=claims
        shift
        ;;
    --verify-only | --verify-only=*)
        mode=verify
        if [[ "$1" == --verify-only=* ]]; then
            verify_dir=${1#*=}
            shift
        else
            [[ $# -ge 2 ]] || die "--verify-only needs a directory"
            verify_dir=$2
            shift 2
        fi
        (($# == 0)) || die "--verify-only takes one directory and nothing else"
        [[ -d "$verify_dir" ]] || die "--verify-only $verify_dir: no such directory"
        ;;
esac

# --- binaries ------------------------------------------------------------------

default_bin_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
if [[ -n "${BIN_DIR:-}" ]]; then
    BIN_DIR=$(cd "$BIN_DIR" && pwd) || die "BIN_DIR=$BIN_DIR is not a directory"
    log "using the binaries in BIN_DIR=$BIN_DIR (no build)"
elif [[ "$mode" == help && -x "$default_bin_dir/bench" ]]; then
    BIN_DIR=$default_bin_dir
else
    command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (or set BIN_DIR to prebuilt binaries)"
    packages=(-p bench -p testkit)
    if [[ "$mode" == run ]]; then
        packages+=(-p producer -p consumer-pull -p consumer-push)
    fi
    # Debian packages librdkafka's build needs and Apache Kafka, when
    # missing (the embedded broker only where Kafka cannot be installed).
    "$REPO_ROOT/scripts/setup.sh" >&2 || die "scripts/setup.sh failed"
    log "building release binaries: cargo build --release ${packages[*]} (a first build takes a few minutes)"
    build_started=$SECONDS
    (cd "$REPO_ROOT" && cargo build --release "${packages[@]}") >&2 ||
        die "cargo build failed"
    log "build done in $((SECONDS - build_started)) s"
    BIN_DIR=$default_bin_dir
fi
export BIN_DIR
BENCH="$BIN_DIR/bench"
[[ -x "$BENCH" ]] || die "$BENCH is missing; build it with cargo build --release -p bench"

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
for bin in producer consumer-pull consumer-push; do
    [[ -x "$BIN_DIR/$bin" ]] ||
        die "$BIN_DIR/$bin is missing; build with: cargo build --release -p producer -p consumer-pull -p consumer-push -p bench"
done

# --- broker ----------------------------------------------------------------------

# The same run directory broker.sh would pick, exported so that every call
# below (status, start, stop) agrees on it.
BROKER_PORT="${BROKER_PORT:-9092}"
if [[ "$BROKER_PORT" == 9092 ]]; then
    RUN_DIR="${RUN_DIR:-$REPO_ROOT/.run/broker}"
else
    RUN_DIR="${RUN_DIR:-$REPO_ROOT/.run/broker-$BROKER_PORT}"
fi
export BROKER_PORT RUN_DIR

started_broker=no
stop_broker() {
    if [[ "$started_broker" == yes ]]; then
        log "stopping the broker this run started"
        "$SCRIPT_DIR/broker.sh" stop || true
        started_broker=no
    fi
}
trap stop_broker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fresh=()
if "$SCRIPT_DIR/broker.sh" status >/dev/null 2>&1; then
    log "a broker started earlier by scripts/broker.sh is running; using it and leaving it running"
else
    started_broker=yes
    # A local Kafka this run starts begins with an empty log: earlier runs'
    # topics would only take disk and slow its start.
    fresh=(--fresh)
fi
brokers=$("$SCRIPT_DIR/broker.sh" start --no-topic "${fresh[@]}" | tail -n 1)
[[ -n "$brokers" ]] || die "scripts/broker.sh start printed no address"
log "broker: $brokers ($(cat "$RUN_DIR/kind" 2>/dev/null || echo unknown), $(cat "$RUN_DIR/version" 2>/dev/null || echo unknown))"

# --- run -------------------------------------------------------------------------

# The embedded broker holds every fetch for the full fetch.wait.max.ms even
# when data is there, so the consumers' default (100 ms, right for Apache
# Kafka, which answers as soon as data arrives) would be its latency floor.
# Given first, so a --consumer-property of the user's own comes after it.
per_broker=()
case "$(cat "$RUN_DIR/kind" 2>/dev/null || true)" in
    nisshi)
        per_broker=(--consumer-property fetch.wait.max.ms=5)
        log "embedded broker: the consumers get fetch.wait.max.ms=5 (it holds every fetch that long)"
        ;;
esac

export BENCH_RESULTS="${BENCH_RESULTS:-$REPO_ROOT/bench-results}"
status=0
"$BENCH" "$subcommand" \
    --brokers "$brokers" \
    --broker-run-dir "$RUN_DIR" \
    --bin-dir "$BIN_DIR" \
    --command-line "$cmdline" \
    "${per_broker[@]}" \
    "$@" || status=$?
exit "$status"
