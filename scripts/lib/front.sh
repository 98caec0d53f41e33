# shellcheck shell=bash
# What scripts/bench.sh, chaos.sh and broker.sh share: the repository, log
# and die under the script's name, the broker's place, and the release
# binaries.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*" && exit "${DIE_STATUS:-1}"; }

# broker_place: BROKER_PORT and the RUN_DIR scripts/broker.sh uses for it,
# exported so that every broker.sh call (start, status, stop) agrees.
broker_place() {
    BROKER_PORT=${BROKER_PORT:-9092}
    RUN_DIR=${RUN_DIR:-$REPO_ROOT/.run/broker$([[ "$BROKER_PORT" == 9092 ]] || echo "-$BROKER_PORT")}
    [[ "$RUN_DIR" = /* ]] || RUN_DIR="$PWD/$RUN_DIR"
    export BROKER_PORT RUN_DIR
}

# release_bins PACKAGE...: exports BIN_DIR, the one given (no build), else
# target/release after cargo build --release of the PACKAGEs, and checks
# that it holds their binaries (testkit's broker: scripts/broker.sh's care).
release_bins() {
    local p args=() started=$SECONDS
    for p; do args+=(-p "$p"); done
    if [[ -n "${BIN_DIR:-}" ]]; then
        BIN_DIR=$(cd "$BIN_DIR" && pwd) || die "BIN_DIR=$BIN_DIR is not a directory"
        log "using the binaries in BIN_DIR=$BIN_DIR (no build)"
    else
        command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (or set BIN_DIR to prebuilt binaries)"
        log "building release binaries: cargo build --release ${args[*]} (a first build takes a few minutes)"
        (cd "$REPO_ROOT" && cargo build --release "${args[@]}") >&2 || die "cargo build failed"
        log "build done in $((SECONDS - started)) s"
        BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
    fi
    export BIN_DIR
    for p; do
        [[ $p == testkit || -x "$BIN_DIR/$p" ]] ||
            die "$BIN_DIR/$p is missing; build it with: cargo build --release ${args[*]}"
    done
}
