#!/usr/bin/env bash
# Installs what building and testing the project needs and a fresh Debian
# machine may lack, skipping what is there (cheap to run every time):
#
#   scripts/setup.sh                         system packages + the broker
#   scripts/setup.sh --no-broker [PACKAGE...] system packages (and PACKAGEs) only
#
# - Debian packages (apt-get as root or through sudo): librdkafka's bundled
#   build (C toolchain, pkg-config, OpenSSL and zlib headers), python3.
# - The broker of the tests, the benchmark and the fault suite: `broker
#   install` (testkit/src/launcher/install.rs): Apache Kafka's jars from
#   Maven Central into ~/.cache/banking-pipeline/kafka-<version>, with
#   OpenJDK 17 and Maven from Debian when missing (~15 s, once); where that
#   cannot be done, Nisshi, the embedded Rust broker (cargo install, ~20-45
#   minutes on 2 cores, once). It says which happened.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

with_broker=yes
case "${1:-}" in
    --no-broker) with_broker=no && shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' && exit 0 ;;
    -*) echo "setup.sh: unknown argument '$1' (see --help)" >&2 && exit 2 ;;
esac

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
log() { printf 'setup.sh: %s\n' "$*" >&2; }

packages=(build-essential pkg-config libssl-dev zlib1g-dev python3 "$@")
missing=()
if command -v dpkg >/dev/null 2>&1; then
    for package in "${packages[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
else
    log "not a Debian-like system (no dpkg): make sure these are installed: ${packages[*]}"
fi
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || {
            log "error: not root and no sudo; install them by hand: apt-get install ${missing[*]}"
            exit 1
        }
        sudo=(sudo)
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
else
    log "Debian packages present: ${packages[*]}"
fi

command -v cargo >/dev/null 2>&1 || {
    log "error: cargo is not on PATH; install Rust with rustup first"
    exit 1
}
[[ "$with_broker" == no ]] || cargo run -q -p testkit --bin broker -- install >/dev/null
