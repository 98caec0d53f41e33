#!/usr/bin/env bash
# Installs what building and testing the project needs and a fresh Debian
# machine may lack; skips everything that is already there, so it is cheap
# to run every time.
#
#   scripts/setup.sh              system packages + Tansu
#   scripts/setup.sh --no-tansu   system packages only
#
# - Debian packages: librdkafka's bundled build (C toolchain, make,
#   pkg-config, OpenSSL headers for `ssl`, zlib), python3, stunnel4 (TLS
#   tests). Installed with apt-get as root (or through sudo) when missing.
# - Tansu, the Kafka-compatible broker the cross-broker tests and the
#   benchmark use when no other broker answers: built from crates.io with
#   the in-memory storage engine (~11 minutes on 2 cores, once).
set -euo pipefail

with_tansu=yes
case "${1:-}" in
    --no-tansu) with_tansu=no ;;
    "") ;;
    -h | --help)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "setup.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
esac

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
log() { printf 'setup.sh: %s\n' "$*" >&2; }

packages=(build-essential pkg-config libssl-dev zlib1g-dev python3 stunnel4)
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

if [[ "$with_tansu" == yes ]]; then
    if command -v tansu >/dev/null 2>&1; then
        log "Tansu present: $(command -v tansu) ($(tansu --version 2>/dev/null || echo '?'))"
    else
        log "installing Tansu: cargo install tansu --locked --features dynostore (~11 minutes, once)"
        cargo install tansu --locked --features dynostore
    fi
fi
