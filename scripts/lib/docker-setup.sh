# shellcheck shell=bash disable=SC2154 # run_dir, debian_release, debian_image: the caller's
# The Docker engine, its compose and buildx plugins and the base images
# docker-compose.yml needs, for scripts/compose-test.sh (which defines log,
# note, now_ms, secs_since and run_dir first). Every function is a no-op
# when what it makes is already there.

COMPOSE_VERSION=${COMPOSE_VERSION:-v5.6.0}
BUILDX_VERSION=${BUILDX_VERSION:-v0.38.2}
DOCKER_PLUGINS_DIR=${DOCKER_PLUGINS_DIR:-${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins}
DOCKER_CACHE=${DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/banking-pipeline/docker}
DOCKERD_STARTED_PID=
STANDIN_LABEL=org.banking-pipeline.standin

# _build_plugin NAME MODULE VERSION PKG LDFLAGS: the Go package PKG of
# MODULE@VERSION (from the Go module proxy) built once into $DOCKER_CACHE,
# installed as the CLI plugin NAME.
_build_plugin() {
    local name=$1 module=$2 version=$3 pkg=$4 ldflags=$5
    local cached="$DOCKER_CACHE/$name-$version"
    mkdir -p "$DOCKER_PLUGINS_DIR" "$DOCKER_CACHE"
    if [[ -x "$DOCKER_PLUGINS_DIR/$name" ]] && cmp -s "$DOCKER_PLUGINS_DIR/$name" "$cached"; then
        log "$name $version present in $DOCKER_PLUGINS_DIR"
        return 0
    fi
    if [[ ! -x "$cached" ]]; then
        command -v go >/dev/null 2>&1 || {
            log "error: building the $name plugin needs Go (apt-get install golang, or go.dev)"
            return 1
        }
        log "building $name $version from the Go module $module (once, ~1-2 min)"
        local dir start=$SECONDS
        dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
        [[ -n "$dir" && -d "$dir" ]] || {
            log "error: go mod download $module@$version gave no source directory"
            return 1
        }
        # Inside the module its own go.mod (with its replace and exclude
        # directives) decides the dependencies, which `go install ...@version`
        # refuses to honour.
        (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$cached.tmp" "$pkg") \
            >"$DOCKER_CACHE/$name-build.log" 2>&1 || {
            tail -20 "$DOCKER_CACHE/$name-build.log" >&2
            log "error: building $name failed (log: $DOCKER_CACHE/$name-build.log)"
            return 1
        }
        mv "$cached.tmp" "$cached"
        log "built $name in $((SECONDS - start)) s"
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

# Starts dockerd when none answers; DOCKERD_STARTED_PID is what it started.
docker_start_engine() {
    if docker info >/dev/null 2>&1; then
        log "a Docker engine answers: using it"
        return 0
    fi
    command -v dockerd >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] || {
        log "error: no Docker engine answers; starting dockerd needs it installed and root (or start the docker service)"
        return 1
    }
    mkdir -p "$DOCKER_CACHE"
    log "starting dockerd (log: $DOCKER_CACHE/dockerd.log)"
    dockerd >"$DOCKER_CACHE/dockerd.log" 2>&1 &
    DOCKERD_STARTED_PID=$!
    local i
    for ((i = 0; i < 60; i++)); do
        if docker info >/dev/null 2>&1; then
            log "dockerd $(docker version --format '{{.Server.Version}}') up (pid $DOCKERD_STARTED_PID)"
            return 0
        fi
        kill -0 "$DOCKERD_STARTED_PID" 2>/dev/null || break
        sleep 1
    done
    log "error: dockerd did not answer; last lines of its log:"
    tail -20 "$DOCKER_CACHE/dockerd.log" >&2
    return 1
}

# Stops only what docker_start_engine started.
docker_stop_engine() {
    [[ -n "$DOCKERD_STARTED_PID" ]] || return 0
    log "stopping the dockerd this script started (pid $DOCKERD_STARTED_PID)"
    kill -TERM "$DOCKERD_STARTED_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 30; i++)); do
        kill -0 "$DOCKERD_STARTED_PID" 2>/dev/null || break
        sleep 1
    done
    DOCKERD_STARTED_PID=
}

# present TAG: 0 when the engine has TAG (noted, with whether a stand-in).
present() {
    docker image inspect "$1" >/dev/null 2>&1 || return 1
    if [[ -n "$(docker image inspect -f "{{index .Config.Labels \"$STANDIN_LABEL\"}}" "$1")" ]]; then
        note "image $1: built locally (stand-in, from an earlier run)"
    else
        note "image $1: present"
    fi
}

# present_or_pulled TAG: present, or pulled within PULL_TIMEOUT s.
present_or_pulled() {
    present "$1" && return 0
    log "pulling $1 (at most ${PULL_TIMEOUT:-60} s)"
    if timeout "${PULL_TIMEOUT:-60}" docker pull -q "$1" >"$run_dir/pull.log" 2>&1; then
        note "image $1: pulled"
    else
        log "cannot pull $1: $(tail -1 "$run_dir/pull.log")" && return 1
    fi
}

# built TAG FN WHAT: FN TAG builds the stand-in TAG; noted with WHAT.
built() {
    local t
    t=$(now_ms)
    log "building $1 locally (stand-in: $3)"
    "$2" "$1" || return 1
    note "image $1: built locally in $(secs_since "$t") s (stand-in: $3)"
}

# _link DIR SOURCE...: SOURCEs into DIR, hard links where possible (the
# Rust toolchain is ~600 MB).
_link() {
    local dir=$1
    shift
    mkdir -p "$dir" && { cp -al "$@" "$dir/" 2>/dev/null || cp -a "$@" "$dir/"; }
}

# _standin TAG NAME: docker/standin/NAME.Dockerfile built on the local
# Debian base, on the context in $run_dir/NAME-context.
_standin() {
    local ctx=$run_dir/$2-context
    cp "docker/standin/$2.Dockerfile" "$ctx/Dockerfile" &&
        docker build -q --label "$STANDIN_LABEL=$2" --build-arg "BASE=$debian_image" \
            -t "$1" "$ctx" >"$run_dir/$2-image.log" 2>&1 || {
        tail -20 "$run_dir/$2-image.log" >&2
        return 1
    }
    rm -rf "$ctx"
}

build_debian_base() {
    local tar=$run_dir/debian-base.tar
    # The host's CA bundle goes in as an extra local CA, so that HTTPS from a
    # container (cargo, curl) trusts what the host trusts, also after
    # ca-certificates regenerates the bundle; it stays in local images only.
    # shellcheck disable=SC2016 # "$1" is the hooks' argument (the chroot)
    mmdebstrap --quiet --variant=minbase --include=ca-certificates \
        --customize-hook='cp /etc/ssl/certs/ca-certificates.crt "$1/usr/local/share/ca-certificates/host-ca-bundle.crt"' \
        --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        "$debian_release" "$tar" \
        "deb http://deb.debian.org/debian $debian_release main" \
        "deb http://deb.debian.org/debian $debian_release-updates main" \
        "deb http://deb.debian.org/debian-security $debian_release-security main" \
        >"$run_dir/mmdebstrap.log" 2>&1 || {
        tail -20 "$run_dir/mmdebstrap.log" >&2
        return 1
    }
    docker import --change 'CMD ["bash"]' --change "LABEL $STANDIN_LABEL=mmdebstrap" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$tar" "$1" >/dev/null
    rm -f "$tar"
}

build_rust_image() {
    local sysroot d parts=()
    sysroot=$(rustc --print sysroot)
    for d in bin lib libexec etc; do
        [[ ! -e "$sysroot/$d" ]] || parts+=("$sysroot/$d")
    done
    rm -rf "$run_dir/rust-context"
    _link "$run_dir/rust-context/rust" "${parts[@]}" && _standin "$1" rust
}

build_kafka_image() {
    local libs
    libs=$(cargo run -q -p testkit --bin broker -- install --kind kafka | tail -1) || return 1
    rm -rf "$run_dir/kafka-context"
    _link "$run_dir/kafka-context" "$libs" docker/standin/{kafka-entrypoint.sh,kafka-run-class.sh,log4j2.properties,tools-log4j2.properties} &&
        _standin "$1" kafka
}
