#!/usr/bin/env bash
# Installs what building and testing the project needs and a fresh Debian
# machine may lack; skips everything that is already there, so it is cheap
# to run every time.
#
#   scripts/setup.sh              system packages + Apache Kafka
#   scripts/setup.sh --no-broker  system packages only
#
# - Debian packages: librdkafka's bundled build (C toolchain, make,
#   pkg-config, OpenSSL headers for `ssl`, zlib), python3. Installed with
#   apt-get as root (or through sudo) when missing.
# - Apache Kafka, the broker the tests, the benchmark and the fault suite
#   run on: the server's jars from Maven Central (scripts/kafka/pom.xml, the
#   version of docker-compose.yml's image) into
#   ~/.cache/banking-pipeline/kafka-<version>; OpenJDK 17 and Maven from
#   Debian's packages when missing. About 15 s, once.
# - Where Apache Kafka cannot be installed (no Java, Maven Central out of
#   reach), the embedded Rust broker instead: Nisshi, the version pinned in
#   scripts/lib/nisshi.sh, built from crates.io with cargo install
#   (~20-45 minutes on 2 cores, once; skipped when a nisshi binary is
#   there). It says which happened.
set -euo pipefail

with_broker=yes
case "${1:-}" in
    --no-broker) with_broker=no ;;
    "") ;;
    -h | --help)
        sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "setup.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
esac

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
log() { printf 'setup.sh: %s\n' "$*" >&2; }

packages=(build-essential pkg-config libssl-dev zlib1g-dev python3)
missing=()
if command -v dpkg >/dev/null 2>&1; then
    for package in "${packages[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
else
    log "not a Debian-like system (no dpkg): make sure a C toolchain, make, pkg-config, OpenSSL headers and zlib are installed"
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

if [[ "$with_broker" == yes ]]; then
    # shellcheck source=lib/kafka.sh
    source "$(dirname "${BASH_SOURCE[0]}")/lib/kafka.sh"
    # shellcheck source=lib/nisshi.sh
    source "$(dirname "${BASH_SOURCE[0]}")/lib/nisshi.sh"
    if install_kafka log; then
        :
    else
        log "Apache Kafka is not available here; the embedded broker (Nisshi $NISSHI_VERSION) is the fallback"
        install_nisshi log || exit 1
    fi
fi
