#!/usr/bin/env bash
# The push-vs-pull benchmark, end to end: build, broker, run, report.
# See `scripts/bench.sh --help` (the usage text below).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/bench.sh [options]
       scripts/bench.sh --verify-only DIR

Runs the push-vs-pull benchmark and writes a report:
  1. builds the release binaries when needed (cargo build --release -p
     banking-producer -p consumer-pull -p consumer-push -p banking-bench),
     unless BIN_DIR names a directory that has them;
  2. gets a broker through scripts/broker.sh (KAFKA_BROKERS if it answers,
     else Docker, else an embedded Tansu; see scripts/broker.sh --help), and
     stops it at the end only if this script started it;
  3. live phase (first, while the broker holds little: Tansu's in-memory
     engine slows down as it fills): at each rate, both consumers run while
     the producer emits at that rate for --duration seconds; per-event
     end-to-end latency;
  4. backlog phase: the producer writes --events events as fast as it can
     into a fresh topic; consumer-pull drains them alone into a fresh
     database, then consumer-push alone into another. In the same run: the
     raw consume ceiling (decode only, no storage), the store insert ceiling
     (same events, no Kafka, half before the drains and half after), the
     producer against its raw ceiling, and the two store queries on the
     backlog database;
  5. verification after each phase: each database holds exactly the
     acknowledged events (count, distinct ids, amount sum, id checksum),
     PASS/FAIL printed per check;
  6. report.md, results.json and SVG pictures in the output directory.
Exits non-zero if any check fails or any step fails.

Options:
  --events N          backlog events (default 10000000)
  --partitions P      partitions of every topic (default 6)
  --out DIR           output directory (default bench-results/<UTC time>)
  --rates R1,R2,...   live rates in events/s (default 2000,20000,100000)
  --rate R            one live rate instead of --rates
  --duration S        seconds per live rate (default 10)
  --warmup S          at most this many seconds for the consumers to join
                      before the live producer starts; it starts as soon as
                      both have their partitions (default 5)
  --seed N, --accounts N      generator settings (default 42, 10000)
  --skip-backlog, --skip-live, --skip-ceilings
  --producer-arg=ARG  extra producer argument, repeatable
                      (e.g. --producer-arg=-Xlinger.ms=1)
  --consumer-arg=ARG  extra argument for both consumers, repeatable
                      (e.g. --consumer-arg=--batch-size=5000)
  --pull-arg=ARG, --push-arg=ARG   extra argument for one consumer
  --verify-only DIR   re-run the verification of an earlier run's databases
                      against its producer stats; prints PASS/FAIL per check
                      and exits non-zero on any FAIL (no broker needed)
  -h, --help          this text

Environment:
  BIN_DIR             use the binaries in this directory; no cargo build
  KAFKA_BROKERS, BROKER_KIND, BROKER_PORT, RUN_DIR
                      broker choice, as for scripts/broker.sh

Other commands of the bench binary (report redraw, single ceilings, query
timing): target/release/bench --help.
EOF
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
verify_dir=""
out=""
forward=()
while (($#)); do
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
        --verify-only)
            [[ $# -ge 2 ]] || die "--verify-only needs a directory"
            verify_dir=$2
            shift 2
            ;;
        --verify-only=*)
            verify_dir=${1#*=}
            shift
            ;;
        --out)
            [[ $# -ge 2 ]] || die "--out needs a directory"
            out=$2
            shift 2
            ;;
        --out=*)
            out=${1#*=}
            shift
            ;;
        --events | --partitions | --rates | --rate | --duration | --warmup | --seed | --accounts | \
            --query-samples | --producer-arg | --consumer-arg | --pull-arg | --push-arg)
            [[ $# -ge 2 ]] || die "$1 needs a value"
            forward+=("$1=$2")
            shift 2
            ;;
        --*)
            forward+=("$1")
            shift
            ;;
        *) die "unexpected argument '$1' (see --help)" ;;
    esac
done

# --- binaries ------------------------------------------------------------------

if [[ -n "${BIN_DIR:-}" ]]; then
    BIN_DIR=$(cd "$BIN_DIR" && pwd) || die "BIN_DIR=$BIN_DIR is not a directory"
    log "using the binaries in BIN_DIR=$BIN_DIR (no build)"
else
    command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (or set BIN_DIR to prebuilt binaries)"
    packages=(-p banking-bench)
    if [[ -z "$verify_dir" ]]; then
        packages+=(-p banking-producer -p consumer-pull -p consumer-push)
    fi
    # Debian packages librdkafka's build needs, when missing (Tansu is
    # installed by scripts/broker.sh only if no other broker answers).
    "$REPO_ROOT/scripts/setup.sh" --no-tansu >&2 || die "scripts/setup.sh failed"
    log "building release binaries: cargo build --release ${packages[*]} (a first build takes a few minutes)"
    build_started=$SECONDS
    (cd "$REPO_ROOT" && cargo build --release "${packages[@]}") >&2 ||
        die "cargo build failed"
    log "build done in $((SECONDS - build_started)) s"
    BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
fi
BENCH="$BIN_DIR/bench"
[[ -x "$BENCH" ]] || die "$BENCH is missing; build it with cargo build --release -p banking-bench"

if [[ -n "$verify_dir" ]]; then
    [[ -d "$verify_dir" ]] || die "--verify-only $verify_dir: no such directory"
    exec "$BENCH" verify "$verify_dir"
fi

for bin in producer consumer-pull consumer-push; do
    [[ -x "$BIN_DIR/$bin" ]] ||
        die "$BIN_DIR/$bin is missing; build with: cargo build --release -p banking-producer -p consumer-pull -p consumer-push -p banking-bench"
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

if "$SCRIPT_DIR/broker.sh" status >/dev/null 2>&1; then
    log "a broker started earlier by scripts/broker.sh is running; using it and leaving it running"
else
    started_broker=yes
fi
brokers=$("$SCRIPT_DIR/broker.sh" start --no-topic | tail -n 1)
[[ -n "$brokers" ]] || die "scripts/broker.sh start printed no address"
log "broker: $brokers ($(cat "$RUN_DIR/kind" 2>/dev/null || echo unknown), $(cat "$RUN_DIR/version" 2>/dev/null || echo unknown))"

# --- run -------------------------------------------------------------------------

if [[ -z "$out" ]]; then
    out="$REPO_ROOT/bench-results/$(date -u +%Y%m%d-%H%M%S)"
fi

status=0
"$BENCH" run \
    --brokers "$brokers" \
    --broker-run-dir "$RUN_DIR" \
    --bin-dir "$BIN_DIR" \
    --out "$out" \
    --command-line "$cmdline" \
    "${forward[@]}" || status=$?
exit "$status"
