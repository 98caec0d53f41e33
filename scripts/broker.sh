#!/usr/bin/env bash
# A running Kafka-compatible broker on any machine, and a way to stop it again.
# This script picks KAFKA_BROKERS or Docker; a local Apache Kafka or Nisshi is
# installed and started by the `broker` binary (testkit/src/launcher, the
# tests' own code).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/broker.sh start [--topic T] [--partitions N] [--no-topic] [--fresh] [--nodes N]
       scripts/broker.sh start NODE | stop [NODE] | kill NODE | topic NAME [--partitions N] | status
       scripts/broker.sh install [--kind auto|kafka|nisshi]

start makes sure a broker runs, creates topic T (default banking.events, N
partitions, default $PARTITIONS or 6) unless --no-topic, and prints the
bootstrap address as the last line of stdout, alone (the rest goes to stderr):
    BROKERS=$(scripts/broker.sh start | tail -1)
The broker: one started earlier from RUN_DIR that still runs; else
KAFKA_BROKERS when it answers (kind kafka-env, nothing started or created);
else Docker when `docker info` answers and BROKER_PORT is 9092 (kind docker;
when `docker compose up` fails, e.g. the image cannot be pulled, the reason in
one line and the next kind); else Apache Kafka, docker-compose.yml's version,
from Maven Central's jars (kind kafka, installed when missing, as by install),
one JVM per node with the compose file's settings; else Nisshi, the embedded
Rust broker (kind nisshi, installed when missing, ~20-45 minutes once). --fresh
deletes the stored log first. --nodes N: N Kafka nodes, node I on BROKER_PORT
+ 2(I-1), replication min(N, 3), min.insync.replicas one fewer. NODE commands
act on one node of it; stop stops only what start started; status exits 0
when the broker answers. Files in RUN_DIR: kind, version, address, pid or
pid-I (while it runs), nodes, heap, storage, owned (docker), kafka[-I]/.

Environment: KAFKA_BROKERS; BROKER_KIND (auto, kafka-env, docker, kafka,
nisshi); BROKER_HOST (127.0.0.1); BROKER_PORT (9092); KAFKA_CONTROLLER_PORT;
KAFKA_HEAP ("-Xms1g -Xmx1g"); KAFKA_HOME_DIR; RUN_DIR (<repo>/.run/broker, or
.run/broker-<port> off 9092); NISSHI, NISSHI_STORAGE (memory or sqlite);
BROKER_BIN (default BIN_DIR/broker, else cargo build --release -p testkit
--bin broker). The local kinds are the `broker` binary's: `broker --help`.
EOF
}

# shellcheck source=scripts/lib/front.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/front.sh"
broker_place
# The port docker-compose.yml publishes (tests may point it elsewhere).
DOCKER_PORT="${DOCKER_PORT:-9092}"
BROKER_KIND="${BROKER_KIND:-auto}"
state() { cat "$RUN_DIR/$1" 2>/dev/null || true; }
# broker ARGS...: the `broker` binary (exec'd when the first argument is exec):
# BROKER_BIN, else BIN_DIR/broker, else built once.
broker() {
    if [[ -z "${BROKER_BIN:-}" && -n "${BIN_DIR:-}" && -x "$BIN_DIR/broker" ]]; then
        BROKER_BIN=$BIN_DIR/broker
    elif [[ -z "${BROKER_BIN:-}" ]]; then
        (cd "$REPO_ROOT" && cargo build --release -q -p testkit --bin broker) >&2 ||
            die "cargo build --release -p testkit --bin broker failed"
        BROKER_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/broker"
    fi
    if [[ "$1" == exec ]]; then shift && exec "$BROKER_BIN" "$@"; else "$BROKER_BIN" "$@"; fi
}

# --- Docker ------------------------------------------------------------------

compose() { docker compose -f "$REPO_ROOT/docker-compose.yml" "$@"; }
docker_available() {
    command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 &&
        docker compose version >/dev/null 2>&1
}

# Brings the compose file's kafka service up; on failure says why in one line
# (the last line docker printed) and returns 1.
start_docker() {
    local owned=yes why
    if [[ -n "$(compose ps -q --status running kafka 2>/dev/null)" ]] &&
        ! [[ "$(state kind)" == docker && "$(state owned)" == yes ]]; then
        owned=no
        log "Kafka container already running (not started by this script); reusing it"
    fi
    log "using Docker: docker compose up -d --wait kafka"
    mkdir -p "$RUN_DIR"
    # Only kafka: --wait counts the exited kafka-init as failed (compose#10596).
    if ! compose up -d --wait kafka 2>"$RUN_DIR/docker.log" >&2; then
        why=$(grep -v '^[[:space:]]*$' "$RUN_DIR/docker.log" | tail -n 1)
        log "Docker could not start Kafka: ${why:-docker compose up failed}" && return 1
    fi
    printf 'docker\n' >"$RUN_DIR/kind"
    printf 'apache/kafka:%s\n' "$(broker version)" >"$RUN_DIR/version"
    printf 'localhost:%s\n' "$DOCKER_PORT" >"$RUN_DIR/address"
    printf '%s\n' "$owned" >"$RUN_DIR/owned"
    rm -f "$RUN_DIR/pid"
}

cmd_start() {
    local args=("$@") topic=banking.events partitions="${PARTITIONS:-6}" make_topic=yes a
    for ((a = 0; a < ${#args[@]}; a++)); do
        case "${args[a]}" in
            -h | --help) usage && exit 0 ;;
            [0-9]*) broker exec start "${args[@]}" ;;
            --nodes)
                if [[ "${args[a + 1]:-1}" != 1 ]]; then
                    [[ "$BROKER_KIND" =~ ^(auto|kafka)$ ]] ||
                        die "--nodes needs the local Apache Kafka (BROKER_KIND=kafka), not '$BROKER_KIND'"
                    BROKER_KIND=kafka
                fi
                ((++a))
                ;;
            --topic) topic=${args[a + 1]:-} && ((++a)) ;;
            --partitions) partitions=${args[a + 1]:-} && ((++a)) ;;
            --no-topic) make_topic=no ;;
        esac
    done
    case "$BROKER_KIND" in auto | kafka-env | docker | kafka | nisshi) ;; *)
        die "BROKER_KIND must be auto, kafka-env, docker, kafka or nisshi, got '$BROKER_KIND'" ;;
    esac
    local kind && kind=$(state kind)
    if [[ "$kind" =~ ^(kafka|nisshi)$ && "$BROKER_KIND" =~ ^(auto|$kind)$ ]] && broker running; then
        broker exec start --kind "$kind" "$@"
    fi
    if [[ -n "${KAFKA_BROKERS:-}" && "$BROKER_KIND" =~ ^(auto|kafka-env)$ ]] && broker answers "$KAFKA_BROKERS"; then
        log "using the broker at KAFKA_BROKERS=$KAFKA_BROKERS (it answers)"
        mkdir -p "$RUN_DIR" && rm -f "$RUN_DIR/pid" "$RUN_DIR/owned"
        printf 'kafka-env\n' >"$RUN_DIR/kind" && echo 'external broker (KAFKA_BROKERS), version not probed' >"$RUN_DIR/version"
        printf '%s\n' "$KAFKA_BROKERS" >"$RUN_DIR/address"
        [[ "$make_topic" == no ]] || log "external broker: not creating topic $topic; the producer's --partitions flag creates it"
        state address && return 0
    fi
    [[ "$BROKER_KIND" != kafka-env ]] || die "BROKER_KIND=kafka-env but no broker answers at KAFKA_BROKERS='${KAFKA_BROKERS:-}'"
    [[ -z "${KAFKA_BROKERS:-}" ]] || log "KAFKA_BROKERS=$KAFKA_BROKERS does not answer; starting a broker instead"
    if [[ "$BROKER_KIND" == docker ]]; then
        docker_available || die "BROKER_KIND=docker but no Docker engine answers ('docker info' failed) or 'docker compose' is missing"
        [[ "$BROKER_PORT" == "$DOCKER_PORT" ]] || die "docker-compose.yml serves port $DOCKER_PORT only; unset BROKER_PORT or use BROKER_KIND=kafka"
        start_docker || die "BROKER_KIND=docker: Docker could not start Kafka (see above)"
    elif ! { [[ "$BROKER_KIND" == auto && "$BROKER_PORT" == "$DOCKER_PORT" ]] && docker_available && start_docker; }; then
        broker exec start --kind "$BROKER_KIND" "$@"
    fi
    [[ "$make_topic" == no ]] || broker topic "$topic" --partitions "$partitions"
    log "broker kind: docker ($(state version))"
    state address
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case "$cmd:$(state kind)" in
        start:*) cmd_start "$@" ;;
        topic:kafka-env) log "external broker (KAFKA_BROKERS): not creating topic ${1:-}; the producer's --partitions flag creates it" ;;
        stop:docker)
            if [[ "$(state owned)" == yes ]]; then
                log "docker compose down -v" && compose down -v >&2 && echo no >"$RUN_DIR/owned"
            else log "the Kafka containers were not started by this script; leaving them running"; fi
            rm -f "$RUN_DIR/address"
            ;;
        stop:kafka-env) log "external broker (KAFKA_BROKERS): nothing to stop" && rm -f "$RUN_DIR/address" ;;
        topic:* | stop:* | kill:* | status:* | install:*) broker exec "$cmd" "$@" ;;
        -h:* | --help:* | help:*) usage ;;
        *) usage >&2 && exit 2 ;;
    esac
}

main "$@"
