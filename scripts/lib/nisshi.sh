# shellcheck shell=bash
# Nisshi, the embedded Rust broker: the fallback where Apache Kafka cannot
# run (no Java, Maven Central out of reach). Its version is pinned here and
# only here; scripts/setup.sh and scripts/broker.sh source this file, and
# testkit (Rust) reads NISSHI_VERSION from it (testkit/src/nisshi.rs).
#
#   binary    $NISSHI, else `nisshi` on PATH, else ~/.cargo/bin/nisshi
#   install   cargo install nisshi --version <pinned> --locked
#             --ignore-rust-version: a build from source, ~20-45 minutes on
#             2 cores, once. --ignore-rust-version because its dependency
#             rama declares a newer rust-version than the toolchains this
#             project supports; it builds with them all the same.

NISSHI_VERSION=0.8.1
NISSHI_INSTALL=(cargo install nisshi --version "$NISSHI_VERSION" --locked --ignore-rust-version)

# Prints the path of a nisshi binary, if there is one.
nisshi_find() {
    local candidate
    for candidate in "${NISSHI:-}" "$(command -v nisshi 2>/dev/null || true)" \
        "${CARGO_HOME:-$HOME/.cargo}/bin/nisshi"; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# nisshi_version_of BINARY: its version, e.g. "0.8.1".
nisshi_version_of() {
    "$1" --version 2>/dev/null | awk '{print $2; exit}'
}

# install_nisshi LOG_FN: installs the pinned Nisshi with cargo when no
# nisshi binary is there (one of another version is used as it is, with a
# warning). Returns non-zero, having said why through LOG_FN, when that
# cannot be done.
install_nisshi() {
    local say=$1 bin have started
    if bin=$(nisshi_find); then
        have=$(nisshi_version_of "$bin")
        if [[ "$have" == "$NISSHI_VERSION" ]]; then
            "$say" "Nisshi $NISSHI_VERSION present at $bin"
        else
            "$say" "warning: $bin is Nisshi ${have:-of an unknown version}, not the pinned $NISSHI_VERSION; using it (for the pinned one: ${NISSHI_INSTALL[*]} --force)"
        fi
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || {
        "$say" "cargo is not on PATH to install Nisshi: install Rust with rustup first"
        return 1
    }
    "$say" "installing the embedded broker: ${NISSHI_INSTALL[*]}"
    "$say" "this builds Nisshi from source once: ~20-45 minutes on 2 cores; later runs reuse ~/.cargo/bin/nisshi"
    started=$SECONDS
    "${NISSHI_INSTALL[@]}" >&2 || {
        "$say" "'${NISSHI_INSTALL[*]}' failed"
        return 1
    }
    nisshi_find >/dev/null || {
        "$say" "cargo install finished but no nisshi binary was found"
        return 1
    }
    "$say" "Nisshi $NISSHI_VERSION installed in $(((SECONDS - started) / 60)) min"
}
