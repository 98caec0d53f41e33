#!/usr/bin/env bash
# Runs the compose stack for real in a Docker engine on this machine, as the
# README tells a user to, and checks it end to end (docs/compose.md).
#
#   scripts/compose-test.sh                  the whole run (defaults below)
#   scripts/compose-test.sh --count 2000000  more events
#   scripts/compose-test.sh --setup-only     engine, plugins and images only
#
# 1. Set-up, each step skipped when already done: Debian's docker.io (and
#    mmdebstrap, curl, jq); the compose v2 and buildx CLI plugins built from
#    their Go module sources into ~/.docker/cli-plugins (cached in
#    ~/.cache/banking-pipeline/docker); dockerd started when none answers
#    (and stopped at the end, only if this script started it).
# 2. Images: each base image is used when present, else pulled, else built
#    locally as a stand-in: debian:bookworm-slim from Debian's packages
#    (mmdebstrap + docker import, with this host's CA bundle copied in so
#    HTTPS works through a TLS-inspecting egress; never committed);
#    rust:<version>-slim-bookworm from that base and this host's Rust
#    toolchain; Apache Kafka from Maven Central's jars
#    (docker/standin/kafka.Dockerfile), chosen with KAFKA_IMAGE. Says which.
# 3. The README's commands, timed: `docker compose build` (cold or warm),
#    `docker compose up -d --build`, the healthchecks, then
#    phase "first":   COUNT events (RATE, default unpaced); once idle each
#                     consumer's /metrics (host ports 9101-9103) shows a
#                     committed count equal to its database's rows, and both
#                     databases verify exactly against the producer's
#                     acknowledged count, amount sum and id checksum
#                     (`bench verify`, reading the volumes);
#                     `banking-query` runs in the consumer-pull container;
#    phase "faults":  another COUNT events (`docker compose run --rm
#                     producer`, FIRST_ID after the first range, FAULT_RATE);
#                     mid-stream `docker compose restart consumer-pull`, and
#                     `docker compose kill -s SIGKILL consumer-push` then
#                     `docker compose up -d`; both databases verify exactly
#                     against the two ranges together;
#    phase "again":   `docker compose down` (volumes kept), `up -d` again:
#                     nothing sent or stored again (same verification,
#                     committed counters 0);
#    then a code change rebuilt (warm rebuild time) and `docker compose
#    down -v`.
#
# Options:
#   --count N       events per phase (default 1000000)
#   --rate N        events/s of the first phase (default 0: unpaced)
#   --fault-rate N  events/s of the faults phase (default 50000)
#   --setup-only    stop after the set-up and the images, leaving running
#                   the dockerd it started (for the README's commands)
#   --keep          leave the stack and its volumes up at the end
#   --no-rebuild    skip the code-change rebuild measurement
#   -h, --help      this text
# Environment: COMPOSE_VERSION (v5.6.0), BUILDX_VERSION (v0.38.2),
#   PULL_TIMEOUT (seconds per docker pull, default 60), RUN_DIR (where the
#   logs, scrapes and the summary go; default .run/compose-test).
# Exit status: 0 when every check passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

count=1000000 rate=0 fault_rate=50000 setup_only=no keep=no rebuild=yes
while (($#)); do
    case "$1" in
        --count) count=${2:?--count needs a number}; shift 2 ;;
        --rate) rate=${2:?--rate needs a number}; shift 2 ;;
        --fault-rate) fault_rate=${2:?--fault-rate needs a number}; shift 2 ;;
        --setup-only) setup_only=yes; shift ;;
        --keep) keep=yes; shift ;;
        --no-rebuild) rebuild=no; shift ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "compose-test.sh: unknown argument '$1' (see --help)" >&2
            exit 2
            ;;
    esac
done
for n in "$count" "$rate" "$fault_rate"; do
    [[ "$n" =~ ^[0-9]+$ ]] || {
        echo "compose-test.sh: '$n' is not a number (see --help)" >&2
        exit 2
    }
done
((count > 0)) || { echo "compose-test.sh: --count must be at least 1" >&2; exit 2; }

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:/usr/local/go/bin:$PATH"
# shellcheck source=scripts/lib/docker-setup.sh
source scripts/lib/docker-setup.sh
# shellcheck source=scripts/lib/kafka.sh
source scripts/lib/kafka.sh

run_dir=${RUN_DIR:-$repo/.run/compose-test}
mkdir -p "$run_dir"
summary=$run_dir/summary.md
started_at=$SECONDS
failures=0
log() { printf 'compose-test: %s\n' "$*" >&2; }
step() { printf '\n==== %s (%s, +%d s)\n' "$*" "$(date -u +%H:%M:%S)" "$((SECONDS - started_at))" >&2; }
note() {
    printf -- '- %s\n' "$*" >>"$summary"
    log "$*"
}
check() { # check WHAT EXPECTED ACTUAL
    if [[ "$2" == "$3" ]]; then
        note "PASS $1: $3"
    else
        note "FAIL $1: $3 (expected $2)"
        failures=$((failures + 1))
    fi
}
now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

stack_up=no
cleanup() {
    local rc=$?
    if [[ $stack_up == yes && $keep == no ]]; then
        log "cleaning up: docker compose down -v"
        docker compose down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    docker_stop_engine
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '# compose-test run of %s UTC (code %s)\n\n' "$(date -u '+%Y-%m-%d %H:%M')" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$summary"

# ---------------------------------------------------------------- set-up
step "set-up: Docker engine, compose and buildx plugins"
t=$(now_ms)
missing=()
for tool in curl jq sqlite3; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if ((${#missing[@]})); then
    pkgs=()
    for tool in "${missing[@]}"; do
        pkgs+=("$tool")
    done
    log "installing Debian packages: ${pkgs[*]}"
    _apt_install "${pkgs[@]}"
fi
docker_install_engine
docker_install_plugins
docker_start_engine
docker compose version >&2
docker buildx version >&2
note "set-up (engine, plugins, dockerd): $(secs_since "$t") s; engine $(docker version --format '{{.Server.Version}}'), compose $COMPOSE_VERSION, buildx $BUILDX_VERSION"

# ---------------------------------------------------------------- images
step "images: present, pulled, or built locally"
dockerfile_arg() { sed -n "s/^ARG $1=//p" Dockerfile | head -1; }
rust_image="rust:$(dockerfile_arg RUST_VERSION)-slim-$(dockerfile_arg DEBIAN_RELEASE)"
debian_release=$(dockerfile_arg DEBIAN_RELEASE)
debian_image="debian:$debian_release-slim"
# shellcheck disable=SC2016 # a literal ${KAFKA_IMAGE:-...}
kafka_default=$(sed -n 's/^ *image: \${KAFKA_IMAGE:-\(.*\)}$/\1/p' docker-compose.yml | head -1)
kafka_version=${kafka_default##*:}
standin_label=org.banking-pipeline.standin
declare -A image_source=()

# try_image TAG: 0 when TAG is there afterwards (present or pulled).
try_image() {
    local tag=$1
    if docker image inspect "$tag" >/dev/null 2>&1; then
        if [[ -n "$(docker image inspect -f "{{index .Config.Labels \"$standin_label\"}}" "$tag" 2>/dev/null)" ]]; then
            image_source[$tag]="built locally (stand-in, from an earlier run)"
        else
            image_source[$tag]="present"
        fi
        return 0
    fi
    log "pulling $tag (at most ${PULL_TIMEOUT:-60} s)"
    if timeout "${PULL_TIMEOUT:-60}" docker pull -q "$tag" >"$run_dir/pull.log" 2>&1; then
        image_source[$tag]="pulled"
        return 0
    fi
    log "cannot pull $tag: $(tail -1 "$run_dir/pull.log")"
    return 1
}

build_debian_base() {
    local tag=$1 tar=$run_dir/debian-base.tar t
    t=$(now_ms)
    log "building $tag locally: mmdebstrap $debian_release (minbase) + docker import"
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
    docker import --change 'CMD ["bash"]' --change "LABEL $standin_label=mmdebstrap" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$tar" "$tag" >/dev/null
    rm -f "$tar"
    image_source[$tag]="built locally in $(secs_since "$t") s (stand-in: mmdebstrap + docker import, host CA bundle added)"
}

build_rust_image() {
    local tag=$1 ctx=$run_dir/rust-context sysroot t
    t=$(now_ms)
    sysroot=$(rustc --print sysroot)
    log "building $tag locally from $debian_image and this host's toolchain ($(rustc --version))"
    rm -rf "$ctx"
    mkdir -p "$ctx/rust"
    # Hard links where possible: the toolchain is ~600 MB without its docs.
    for d in bin lib libexec etc; do
        [[ -e "$sysroot/$d" ]] || continue
        cp -al "$sysroot/$d" "$ctx/rust/" 2>/dev/null || cp -a "$sysroot/$d" "$ctx/rust/"
    done
    cp docker/standin/rust.Dockerfile "$ctx/Dockerfile"
    docker build -q --label "$standin_label=host-toolchain" --build-arg "BASE=$debian_image" \
        -t "$tag" "$ctx" >"$run_dir/rust-image.log" 2>&1 || {
        tail -20 "$run_dir/rust-image.log" >&2
        return 1
    }
    rm -rf "$ctx"
    image_source[$tag]="built locally in $(secs_since "$t") s (stand-in: $debian_image + the host's $(rustc --version | cut -d' ' -f1-2))"
}

build_kafka_image() {
    local tag=$1 ctx=$run_dir/kafka-context t
    t=$(now_ms)
    install_kafka log
    log "building $tag locally: Apache Kafka $kafka_version's jars from Maven Central on OpenJDK 17"
    rm -rf "$ctx"
    mkdir -p "$ctx"
    cp -al "$(kafka_home)/libs" "$ctx/libs" 2>/dev/null || cp -a "$(kafka_home)/libs" "$ctx/libs"
    cp docker/standin/kafka.Dockerfile "$ctx/Dockerfile"
    cp docker/standin/kafka-entrypoint.sh docker/standin/kafka-run-class.sh \
        docker/standin/log4j2.properties docker/standin/tools-log4j2.properties "$ctx/"
    docker build -q --label "$standin_label=maven-central" --build-arg "BASE=$debian_image" \
        -t "$tag" "$ctx" >"$run_dir/kafka-image.log" 2>&1 || {
        tail -20 "$run_dir/kafka-image.log" >&2
        return 1
    }
    rm -rf "$ctx"
    image_source[$tag]="built locally in $(secs_since "$t") s (stand-in: Maven Central's kafka_2.13 $kafka_version jars on Debian's OpenJDK 17)"
}

if [[ -n "${KAFKA_IMAGE:-}" ]]; then
    kafka_image=$KAFKA_IMAGE
    try_image "$kafka_image" || { log "error: KAFKA_IMAGE=$kafka_image is neither present nor pullable"; exit 1; }
else
    kafka_image=$kafka_default
    if ! try_image "$kafka_image"; then
        kafka_image="banking-kafka-standin:$kafka_version"
        export KAFKA_IMAGE=$kafka_image
    fi
fi
try_image "$debian_image" || build_debian_base "$debian_image"
try_image "$rust_image" || build_rust_image "$rust_image"
if [[ -z "${image_source[$kafka_image]:-}" ]]; then
    if docker image inspect "$kafka_image" >/dev/null 2>&1; then
        image_source[$kafka_image]="built locally (stand-in, from an earlier run)"
    else
        build_kafka_image "$kafka_image"
    fi
fi
for tag in "$kafka_image" "$rust_image" "$debian_image"; do
    note "image $tag: ${image_source[$tag]}"
done
[[ -n "${KAFKA_IMAGE:-}" ]] && note "KAFKA_IMAGE=$KAFKA_IMAGE (the official $kafka_default could not be pulled)"

if [[ $setup_only == yes ]]; then
    note "set-up only: done in $((SECONDS - started_at)) s"
    if [[ -n "$DOCKERD_STARTED_PID" ]]; then
        # The point of --setup-only is an engine to run the README's commands on.
        log "dockerd (pid $DOCKERD_STARTED_PID) is left running; stop it with: kill $DOCKERD_STARTED_PID"
        DOCKERD_STARTED_PID=
    fi
    [[ -n "${KAFKA_IMAGE:-}" ]] && log "before the README's docker compose commands: export KAFKA_IMAGE=$KAFKA_IMAGE"
    exit 0
fi

# ---------------------------------------------------------------- the host's verifier
step "the verifier: bench (host build, reads the volumes)"
t=$(now_ms)
cargo build -q -p bench --bin bench 2>&1 | tail -20 >&2
bench_bin=$repo/target/debug/bench
note "host build of bench (verification): $(secs_since "$t") s"

# ---------------------------------------------------------------- the stack
for port in 9092 9101 9102 9103; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ! docker compose ps -q 2>/dev/null | grep -q .; then
        log "error: port $port on this host is taken by something else; the stack publishes 9092 and 9101-9103"
        exit 1
    fi
done
if docker compose ps -a -q 2>/dev/null | grep -q . || docker volume ls -q | grep -q "^$(docker compose config --format json | jq -r .name)_"; then
    log "a stack of this project is there from an earlier run: docker compose down -v first"
    docker compose down -v --remove-orphans >/dev/null 2>&1
fi

export COUNT=$count RATE=$rate
unset FIRST_ID

step "docker compose build"
cold=$(docker buildx du --verbose 2>/dev/null | grep -c 'exec.cachemount' || true)
t=$(now_ms)
docker compose build >"$run_dir/build.log" 2>&1 || {
    tail -40 "$run_dir/build.log" >&2
    log "error: docker compose build failed (log: $run_dir/build.log)"
    exit 1
}
build_s=$(secs_since "$t")
if [[ "$cold" == 0 ]]; then build_kind="cold (no BuildKit cache)"; else build_kind="with BuildKit's caches from an earlier run"; fi
note "docker compose build: $build_s s, $build_kind; image $(docker image inspect -f '{{.Size}}' banking-pipeline:local | awk '{ printf "%.0f MB", $1 / 1e6 }')"

metric() { # metric PORT NAME: the value, or empty when the endpoint does not answer
    curl -s --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk -v n="$2" '$1 == n { printf "%.0f", $2; exit }'
}
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(docker compose ps -q "$1")" 2>/dev/null; }
wait_healthy() { # wait_healthy SERVICE TIMEOUT
    local i
    for ((i = 0; i < $2; i++)); do
        [[ "$(health "$1")" == healthy ]] && return 0
        sleep 1
    done
    log "error: $1 is not healthy after $2 s ($(health "$1"))"
    docker compose logs --tail 20 "$1" >&2
    return 1
}
# The compose project's name (the directory's, normalised by compose, unless
# COMPOSE_PROJECT_NAME says otherwise): its volumes are PROJECT_NAME.
project=$(docker compose config --format json | jq -r .name)
volume_dir() { docker volume inspect -f '{{.Mountpoint}}' "${project}_$1"; }
db_path() { echo "$(volume_dir "$1-db")/$1.db"; }
# Reading the databases as root leaves nothing the consumers (uid 10001)
# cannot open: SQLite gives a -wal or -shm file it creates as root the
# database file's owner.
# rows MODEL: the events in MODEL's database (0 before it exists).
rows() {
    local db
    db=$(db_path "$1")
    if [[ -f "$db" ]]; then
        sqlite3 -readonly "$db" 'SELECT count(*) FROM events' 2>/dev/null || echo "?"
    else
        echo 0
    fi
}
wait_rows() { # wait_rows EXPECTED TIMEOUT: both databases hold EXPECTED events
    local want=$1 i pull="?" push="?"
    for ((i = 0; i < $2; i += 2)); do
        pull=$(rows pull) push=$(rows push)
        [[ "$pull" == "$want" && "$push" == "$want" ]] && return 0
        sleep 2
    done
    log "consumers not done after $2 s: pull $pull, push $push events stored (want $want)"
    return 1
}
# verify PHASE PRODUCER_JSON: bench verify on both databases in place.
verify() {
    local dir=$run_dir/verify/$1
    rm -rf "$run_dir/verify"
    mkdir -p "$dir"
    cp "$2" "$dir/producer.json"
    ln -s "$(db_path pull)" "$dir/pull.db"
    ln -s "$(db_path push)" "$dir/push.db"
    if "$bench_bin" verify "$run_dir/verify" >"$run_dir/verify-$1.txt" 2>&1; then
        note "PASS verification $1 (bench verify: $(tail -1 "$run_dir/verify-$1.txt"))"
    else
        note "FAIL verification $1 (bench verify, $run_dir/verify-$1.txt)"
        failures=$((failures + 1))
    fi
    sed 's/^/    /' "$run_dir/verify-$1.txt" >>"$summary"
    cat "$run_dir/verify-$1.txt" >&2
}
producer_stats() { # producer_stats FIRST COUNT: the stats file the producer wrote on its volume
    echo "$(volume_dir producer-data)/producer-$1-$2.json"
}
scrape() { # scrape NAME: the three endpoints into the run directory
    local port
    for port in 9101 9102 9103; do
        curl -s --max-time 2 "http://127.0.0.1:$port/metrics" >"$run_dir/metrics-$1-$port.txt" 2>/dev/null || true
    done
}

# ------------------------------------------------------------ phase "first"
step "docker compose up -d --build (COUNT=$COUNT RATE=$RATE)"
t_up=$(now_ms)
stack_up=yes
docker compose up -d --build >"$run_dir/up.log" 2>&1 || {
    tail -40 "$run_dir/up.log" >&2
    log "error: docker compose up failed (log: $run_dir/up.log)"
    docker compose logs --tail 30 >&2 || true
    exit 1
}
up_s=$(secs_since "$t_up")
note "docker compose up -d --build (image built): returned in $up_s s (Kafka healthy, topic created, pipeline started)"
first_pull="" first_push="" producer_scraped=""
for ((i = 0; i < 1200; i++)); do
    if [[ -z "$producer_scraped" ]] && curl -s --max-time 1 http://127.0.0.1:9101/metrics >"$run_dir/metrics-running-9101.txt" 2>/dev/null &&
        grep -q '^banking_producer_events_acknowledged_total [1-9]' "$run_dir/metrics-running-9101.txt"; then
        producer_scraped=$(awk '$1 ~ /^banking_producer_events_(sent|acknowledged|failed)_total$/ { sub(/^banking_producer_events_/, "", $1); sub(/_total$/, "", $1); printf "%s %s, ", $1, $2 }' "$run_dir/metrics-running-9101.txt")
        note "metrics :9101 (producer, while sending, $(secs_since "$t_up") s after up): ${producer_scraped%, }"
    fi
    [[ -z "$first_pull" && "$(metric 9102 banking_consumer_events_committed_total)" =~ ^[1-9] ]] && first_pull=$(secs_since "$t_up")
    [[ -z "$first_push" && "$(metric 9103 banking_consumer_events_committed_total)" =~ ^[1-9] ]] && first_push=$(secs_since "$t_up")
    [[ -n "$first_pull" && -n "$first_push" ]] && break
    sleep 0.1
done
note "up -> first stored event: consumer-pull $first_pull s, consumer-push $first_push s"
for service in consumer-pull consumer-push; do
    if wait_healthy "$service" 90; then
        note "$service healthy $(secs_since "$t_up") s after up (its healthcheck: --ready-file written, metrics answering)"
    else
        failures=$((failures + 1))
    fi
done
note "kafka: $(health kafka)"
producer_id=$(docker compose ps -a -q producer)
producer_rc=$(timeout 1800 docker wait "$producer_id")
check "producer exit status" 0 "$producer_rc"
docker compose logs --no-log-prefix producer 2>/dev/null | grep -E '^(acknowledged|events_acknowledged)' | sed 's/^/    /' >>"$summary" || true
stats1=$(producer_stats 1 "$COUNT")
acked1=$(jq -r .events_acknowledged "$stats1")
check "producer acknowledged" "$COUNT" "$acked1"
t=$(now_ms)
wait_rows "$acked1" 900 || failures=$((failures + 1))
note "both consumers idle at $acked1 events, $(secs_since "$t_up") s after up"
sleep 6 # the counters are set once per batch; the lag gauges every 5 s
scrape first
for port in 9102 9103; do
    check "metrics :$port banking_consumer_events_committed_total = database rows" "$acked1" \
        "$(metric "$port" banking_consumer_events_committed_total)"
    lag=$(awk '$1 ~ /^banking_consumer_lag_messages\{/ { s += $2; n++ } END { print n + 0 " partitions, lag " s + 0 }' "$run_dir/metrics-first-$port.txt")
    note "metrics :$port: $lag; dead letters $(metric "$port" banking_consumer_dead_letters_total)"
done
[[ -n "$producer_scraped" ]] || {
    note "FAIL metrics :9101: the producer's endpoint never answered while it was sending"
    failures=$((failures + 1))
}
verify first "$stats1"
step "banking-query inside the consumer-pull container"
if docker compose run --rm --no-deps consumer-pull banking-query /data/pull.db 10000001 >"$run_dir/query.txt" 2>"$run_dir/query.err"; then
    note "banking-query in the consumer-pull container: $(sed -n '1,2p' "$run_dir/query.txt" | tr -s ' \n' ' ')"
else
    note "FAIL banking-query in the consumer-pull container ($run_dir/query.txt)"
    failures=$((failures + 1))
fi
sed -n 's/^/    /; 1,8p' "$run_dir/query.txt" >>"$summary"

# ----------------------------------------------------------- phase "faults"
first2=$((COUNT + 1))
step "faults: COUNT=$COUNT FIRST_ID=$first2 RATE=$fault_rate with docker compose run --rm producer; restart and SIGKILL mid-stream"
FIRST_ID=$first2 RATE=$fault_rate docker compose run --rm producer >"$run_dir/producer-faults.log" 2>&1 &
producer_pid=$!
target=$((acked1 + COUNT / 4))
for ((i = 0; i < 600; i++)); do
    (($(rows pull) >= target)) && break
    sleep 0.5
done
t=$(now_ms)
docker compose restart consumer-pull >>"$run_dir/faults.log" 2>&1
note "docker compose restart consumer-pull at $(rows pull) stored events: $(secs_since "$t") s (SIGTERM, grace 10 s)"
docker compose logs --no-log-prefix --since 30s consumer-pull 2>/dev/null | grep -i -E 'signal|shut|stopp|exit' | tail -3 | sed 's/^/    /' >>"$summary" || true
target=$((acked1 + COUNT / 2))
for ((i = 0; i < 600; i++)); do
    (($(rows push) >= target)) && break
    sleep 0.5
done
killed_at=$(rows push)
docker compose kill -s SIGKILL consumer-push >>"$run_dir/faults.log" 2>&1
docker compose up -d >>"$run_dir/faults.log" 2>&1
note "docker compose kill -s SIGKILL consumer-push at $killed_at stored events, then docker compose up -d"
wait "$producer_pid" && producer_rc=0 || producer_rc=$?
check "producer (faults phase) exit status" 0 "$producer_rc"
stats2=$(producer_stats "$first2" "$COUNT")
acked2=$(jq -r .events_acknowledged "$stats2")
check "producer (faults phase) acknowledged" "$COUNT" "$acked2"
total=$((acked1 + acked2))
wait_rows "$total" 900 || failures=$((failures + 1))
# The two ranges as one: counts and amount sums add up, and the id checksum
# is a wrapping sum of per-id hashes (proto::IdChecksum), so it adds too.
jq -s '.[0] + {
    events_requested: (.[0].events_requested + .[1].events_requested),
    events_sent: (.[0].events_sent + .[1].events_sent),
    events_acknowledged: (.[0].events_acknowledged + .[1].events_acknowledged),
    amount_minor_sum: (.[0].amount_minor_sum + .[1].amount_minor_sum),
    last_event_id: .[1].last_event_id
}' "$stats1" "$stats2" >"$run_dir/producer-both.json"
sum_hex() { python3 -c 'import sys; print("%016x" % ((int(sys.argv[1], 16) + int(sys.argv[2], 16)) % (1 << 64)))' "$1" "$2"; }
both_sum=$(sum_hex "$(jq -r .id_checksum "$stats1")" "$(jq -r .id_checksum "$stats2")")
jq --arg c "$both_sum" '.id_checksum = $c' "$run_dir/producer-both.json" >"$run_dir/producer-both.json.tmp"
mv "$run_dir/producer-both.json.tmp" "$run_dir/producer-both.json"
verify faults "$run_dir/producer-both.json"
scrape faults
for port in 9102 9103; do
    note "metrics :$port after the faults: committed $(metric "$port" banking_consumer_events_committed_total) by this process, redelivered $(metric "$port" banking_consumer_redelivered_total), dead letters $(metric "$port" banking_consumer_dead_letters_total)"
done

# ------------------------------------------------------------ phase "again"
step "docker compose down (volumes kept), then up -d again"
t=$(now_ms)
docker compose down >>"$run_dir/again.log" 2>&1
note "docker compose down: $(secs_since "$t") s"
t=$(now_ms)
docker compose up -d >>"$run_dir/again.log" 2>&1
note "docker compose up -d again: $(secs_since "$t") s"
for service in consumer-pull consumer-push; do
    wait_healthy "$service" 120 || failures=$((failures + 1))
done
docker wait "$(docker compose ps -a -q producer)" >/dev/null
docker compose logs --no-log-prefix producer 2>/dev/null | grep '^produce-once' | sed 's/^/    /' >>"$summary" || true
sleep 10
scrape again
for port in 9102 9103; do
    check "metrics :$port after down/up: committed (nothing stored again)" 0 "$(metric "$port" banking_consumer_events_committed_total)"
done
check "events in pull.db after down/up" "$total" "$(rows pull)"
check "events in push.db after down/up" "$total" "$(rows push)"
verify again "$run_dir/producer-both.json"

# ------------------------------------------------------- a code change rebuilt
if [[ $rebuild == yes ]]; then
    step "warm rebuild after a code change (a copy of the tree, one comment added to consumer-core)"
    copy=$run_dir/rebuild-src
    rm -rf "$copy"
    mkdir -p "$copy"
    git ls-files -z | xargs -0 cp --parents -p -t "$copy"
    # A new comment each time, or BuildKit would find the whole step cached.
    printf '\n// compose-test: a code change for the warm rebuild measurement (%s)\n' "$(date +%s%N)" >>"$copy/consumer-core/src/lib.rs"
    t=$(now_ms)
    if docker buildx build --load -t banking-pipeline:rebuild-check "$copy" >"$run_dir/rebuild.log" 2>&1; then
        note "warm rebuild after a code change in consumer-core: $(secs_since "$t") s ($(grep -c 'Compiling' "$run_dir/rebuild.log" || true) crates compiled: $(grep -o 'Compiling [a-z_-]*' "$run_dir/rebuild.log" | awk '{ print $2 }' | sort -u | tr '\n' ' '))"
    else
        note "FAIL warm rebuild ($run_dir/rebuild.log)"
        failures=$((failures + 1))
    fi
    docker image rm banking-pipeline:rebuild-check >/dev/null 2>&1 || true
    rm -rf "$copy"
fi

if [[ $keep == no ]]; then
    step "docker compose down -v"
    docker compose down -v >>"$run_dir/again.log" 2>&1
    stack_up=no
    left=$(docker volume ls -q | grep -c "^${project}_" || true)
    check "volumes left after down -v" 0 "$left"
fi

note "total: $((SECONDS - started_at)) s, $failures failure(s)"
printf '\nsummary: %s\n' "$summary" >&2
cat "$summary"
((failures == 0))
