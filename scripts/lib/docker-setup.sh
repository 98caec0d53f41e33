# shellcheck shell=bash
# The Docker engine and the two CLI plugins docker-compose.yml needs, for
# scripts/compose-test.sh. Sourced; every function is a no-op when what it
# installs is already there.
#
#   docker_install_engine     Debian's docker.io (dockerd, containerd, runc) and,
#                             for the stand-in base image, mmdebstrap
#   docker_install_plugins    compose v2 and buildx, built from their Go module
#                             sources into the CLI plugins directory (cached)
#   docker_start_engine       starts dockerd when none answers; sets
#                             DOCKERD_STARTED_PID to what it started
#   docker_stop_engine        stops only what docker_start_engine started

COMPOSE_VERSION=${COMPOSE_VERSION:-v5.6.0}
BUILDX_VERSION=${BUILDX_VERSION:-v0.38.2}
DOCKER_PLUGINS_DIR=${DOCKER_PLUGINS_DIR:-${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins}
DOCKER_CACHE=${DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/banking-pipeline/docker}
DOCKERD_STARTED_PID=

_dlog() { printf 'compose-test: %s\n' "$*" >&2; }

_apt_updated=no
_apt_install() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || {
            _dlog "error: not root and no sudo; install by hand: apt-get install $*"
            return 1
        }
        sudo=(sudo)
    fi
    if [[ $_apt_updated == no ]]; then
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq
        _apt_updated=yes
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

docker_install_engine() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
    # docker import of the stand-in base image needs tar and the host's CA
    # bundle; both are on any Debian machine.
    if ((${#missing[@]})); then
        _dlog "installing Debian packages: ${missing[*]}"
        _apt_install "${missing[@]}"
    else
        _dlog "Debian packages present: docker.io, mmdebstrap"
    fi
}

# Builds the Go module MODULE@VERSION's package PKG into the plugins
# directory as NAME, from the module's source (the Go module proxy), once:
# the binary is kept in $DOCKER_CACHE and copied from there next time.
_build_plugin() {
    local name=$1 module=$2 version=$3 pkg=$4 ldflags=$5
    local cached="$DOCKER_CACHE/$name-$version"
    mkdir -p "$DOCKER_PLUGINS_DIR" "$DOCKER_CACHE"
    if [[ -x "$DOCKER_PLUGINS_DIR/$name" ]] && cmp -s "$DOCKER_PLUGINS_DIR/$name" "$cached"; then
        _dlog "$name $version present in $DOCKER_PLUGINS_DIR"
        return 0
    fi
    if [[ ! -x "$cached" ]]; then
        command -v go >/dev/null 2>&1 || {
            _dlog "error: building the $name plugin needs Go (apt-get install golang, or go.dev)"
            return 1
        }
        _dlog "building $name $version from the Go module $module (once, ~1-2 min)"
        local dir start=$SECONDS
        dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
        [[ -n "$dir" && -d "$dir" ]] || {
            _dlog "error: go mod download $module@$version gave no source directory"
            return 1
        }
        # Inside the module its own go.mod (with its replace and exclude
        # directives) decides the dependencies, which `go install ...@version`
        # refuses to honour.
        (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$cached.tmp" "$pkg") \
            >"$DOCKER_CACHE/$name-build.log" 2>&1 || {
            tail -20 "$DOCKER_CACHE/$name-build.log" >&2
            _dlog "error: building $name failed (log: $DOCKER_CACHE/$name-build.log)"
            return 1
        }
        mv "$cached.tmp" "$cached"
        _dlog "built $name in $((SECONDS - start)) s"
    fi
    install -m 0755 "$cached" "$DOCKER_PLUGINS_DIR/$name"
}

docker_install_plugins() {
    _build_plugin docker-compose github.com/docker/compose/v5 "$COMPOSE_VERSION" ./cmd \
        "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION"
    # Without the version compose takes buildx for too old (it wants 0.17+)
    # and falls back to the classic builder, which refuses RUN --mount.
    _build_plugin docker-buildx github.com/docker/buildx "$BUILDX_VERSION" ./cmd/buildx \
        "-s -w -X github.com/docker/buildx/version.Version=$BUILDX_VERSION"
}

docker_start_engine() {
    if docker info >/dev/null 2>&1; then
        _dlog "a Docker engine answers: using it"
        return 0
    fi
    command -v dockerd >/dev/null 2>&1 || {
        _dlog "error: no Docker engine answers and dockerd is not installed"
        return 1
    }
    [[ $(id -u) -eq 0 ]] || {
        _dlog "error: no Docker engine answers; starting dockerd needs root (or start the docker service)"
        return 1
    }
    mkdir -p "$DOCKER_CACHE"
    _dlog "starting dockerd (log: $DOCKER_CACHE/dockerd.log)"
    dockerd >"$DOCKER_CACHE/dockerd.log" 2>&1 &
    DOCKERD_STARTED_PID=$!
    local i
    for ((i = 0; i < 60; i++)); do
        if docker info >/dev/null 2>&1; then
            _dlog "dockerd $(docker version --format '{{.Server.Version}}') up (pid $DOCKERD_STARTED_PID)"
            return 0
        fi
        kill -0 "$DOCKERD_STARTED_PID" 2>/dev/null || break
        sleep 1
    done
    _dlog "error: dockerd did not answer; last lines of its log:"
    tail -20 "$DOCKER_CACHE/dockerd.log" >&2
    return 1
}

docker_stop_engine() {
    [[ -n "$DOCKERD_STARTED_PID" ]] || return 0
    _dlog "stopping the dockerd this script started (pid $DOCKERD_STARTED_PID)"
    kill -TERM "$DOCKERD_STARTED_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 30; i++)); do
        kill -0 "$DOCKERD_STARTED_PID" 2>/dev/null || break
        sleep 1
    done
    DOCKERD_STARTED_PID=
}
