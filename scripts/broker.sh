#!/usr/bin/env bash
# A running Kafka-compatible broker on any machine, and a way to stop it again.
# See `scripts/broker.sh --help` (the usage text below) for what it does.
set -euo pipefail

usage() {
    sed "s/@NISSHI_VERSION@/$NISSHI_VERSION/g" <<'EOF'
Usage: scripts/broker.sh <command> [options]

Gives a running Kafka-compatible broker on any machine, and stops it again.

Commands:
  start [--topic T] [--partitions N] [--no-topic] [--fresh] [--nodes N]
      Make sure a broker runs, create topic T (default banking.events) with
      N partitions (default $PARTITIONS or 6) unless --no-topic, and print the
      bootstrap address as the last line of stdout, alone:
          BROKERS=$(scripts/broker.sh start | tail -1)
      Everything else goes to stderr. The broker is picked in this order:
        1. KAFKA_BROKERS is set and a broker answers there: use it as is
           (kind "kafka-env"; nothing is started or created).
        2. A Docker engine answers (`docker info`) and BROKER_PORT is 9092:
           `docker compose up -d --wait kafka` with the repo's
           docker-compose.yml (Apache Kafka in KRaft mode; kind "docker").
        3. Java is there (or can be installed): Apache Kafka itself, the
           version of docker-compose.yml's image, from Maven Central (kind
           "kafka"; installed by scripts/setup.sh, ~15 s once), as one JVM
           in KRaft combined mode (broker + controller) with the compose
           file's settings, on BROKER_HOST:BROKER_PORT, its controller on
           KAFKA_CONTROLLER_PORT, its log directory under RUN_DIR/kafka.
        4. Otherwise the embedded Rust broker, Nisshi @NISSHI_VERSION@ (kind
           "nisshi"), a Kafka-compatible broker, with in-memory storage
           (NISSHI_STORAGE=sqlite keeps its log in RUN_DIR/nisshi.db across
           a restart, at ~1/4 of the produce and ~1/15 of the consume
           rate; docs/brokers.md): installed first when missing
           (`cargo install nisshi --version @NISSHI_VERSION@ --locked
           --ignore-rust-version`, ~20-45 minutes on 2 cores, once).
      A broker this script started earlier (its pid file is alive) is reused.
      Something else listening on the port is an error, never taken over.
      --fresh (kind kafka, or nisshi with NISSHI_STORAGE=sqlite): delete the
      stored log first, when the broker is not running, so every topic
      starts empty.
      --nodes N (kind kafka): a cluster of N local Apache Kafka nodes, each
      a JVM in KRaft combined mode and a voter of the controller quorum,
      node I on port BROKER_PORT + 2(I-1) (its controller one above), its
      data and log in RUN_DIR/kafka-I. Topics get min(N, 3) replicas and
      min.insync.replicas one fewer (2 with three nodes), unclean leader
      election stays off, and the group offsets are replicated alike. With
      the producer's acks=all and idempotence (its defaults), an
      acknowledged event is on at least two nodes: losing any one node
      loses nothing. Losing two of three stops writes (and the controller
      quorum) until one returns.

  start NODE | stop NODE | kill NODE
      One node of the local cluster: start it again on its data (waiting
      until it serves), stop it (controlled shutdown: its leaderships move
      first) or kill -9 it.

  topic NAME [--partitions N]
      Create topic NAME (default 6 partitions) on the broker started here.
      Succeeds when the topic exists already. With kind "kafka-env" nothing
      is created: the producer's --partitions flag creates its topic.

  stop
      Stop what `start` started: SIGTERM to the Kafka or Nisshi process
      from the pid file, waiting for it to exit (SIGKILL after 60 s for
      Kafka, 10 s for Nisshi), or `docker compose down -v`. A local Kafka
      (and Nisshi on sqlite) keeps its log under RUN_DIR, so the next
      `start` serves the same topics (use `start --fresh` for empty ones);
      Nisshi in memory loses its topics. Never stops a broker this script
      did not start (an external KAFKA_BROKERS, or containers already
      running before `start`).

  status
      Print kind, address, pid, version and whether the broker answers.
      Exit status 0 when it answers, 1 otherwise.

Files in the run directory (RUN_DIR):
  kind      kafka-env | docker | kafka | nisshi   (kept after stop, for reports)
  version   e.g. "Apache Kafka 4.3.1", "nisshi @NISSHI_VERSION@" or "apache/kafka:4.3.1"
  address   the bootstrap address printed by start
  pid       the broker's process id (kafka, nisshi; only while it runs);
            pid-I for node I of a cluster
  nodes     kafka: how many local nodes
  heap      the JVM's heap options (kafka)
  kafka/    kafka: server.properties, data/ (the log), logs/server.log;
            kafka-I/ for node I of a cluster
  storage   nisshi: its storage engine, memory://nisshi/ or sqlite://nisshi.db
  nisshi.log, nisshi.db   nisshi: its output; its log (sqlite storage)
  owned     docker: "yes" when start brought the containers up

Environment:
  KAFKA_BROKERS         an existing broker to use (host:port[,host:port...])
  BROKER_KIND           auto (default) | kafka-env | docker | kafka | nisshi:
                        skip the choice above
  BROKER_HOST           address a local broker listens on (default 127.0.0.1)
  BROKER_PORT           port (default 9092); use another one for a private
                        broker next to the default one
  KAFKA_CONTROLLER_PORT kafka: the KRaft controller's port (default
                        BROKER_PORT + 1)
  KAFKA_HEAP            kafka: JVM heap options (default "-Xms1g -Xmx1g",
                        as Kafka's own start script; ample for one node on
                        a 2-core machine)
  KAFKA_HOME_DIR        kafka: where its jars are installed (default
                        ~/.cache/banking-pipeline/kafka-<version>)
  RUN_DIR               state directory (default <repo>/.run/broker, or
                        <repo>/.run/broker-<port> when BROKER_PORT != 9092)
  BROKER_START_TIMEOUT  seconds to wait for the broker to answer (default 60)
  NISSHI                path of the nisshi binary (default: PATH, ~/.cargo/bin)
  NISSHI_STORAGE        nisshi: memory (default) or sqlite

"Answers" means a TCP connection to the address succeeds.
EOF
}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
COMPOSE_FILE_PATH="$REPO_ROOT/docker-compose.yml"
# The compose file publishes and advertises this port; it is not configurable.
DOCKER_PORT=9092
DOCKER_ADDRESS="localhost:$DOCKER_PORT"

BROKER_KIND="${BROKER_KIND:-auto}"
BROKER_HOST="${BROKER_HOST:-127.0.0.1}"
BROKER_PORT="${BROKER_PORT:-9092}"
if [[ "$BROKER_PORT" == 9092 ]]; then
    RUN_DIR="${RUN_DIR:-$REPO_ROOT/.run/broker}"
else
    RUN_DIR="${RUN_DIR:-$REPO_ROOT/.run/broker-$BROKER_PORT}"
fi
# Absolute: Nisshi runs with RUN_DIR as its working directory.
[[ "$RUN_DIR" = /* ]] || RUN_DIR="$PWD/$RUN_DIR"
START_TIMEOUT="${BROKER_START_TIMEOUT:-60}"
KAFKA_HEAP="${KAFKA_HEAP:--Xms1g -Xmx1g}"
# shellcheck source=lib/kafka.sh
source "$SCRIPT_DIR/lib/kafka.sh"
# shellcheck source=lib/nisshi.sh
source "$SCRIPT_DIR/lib/nisshi.sh"
DEFAULT_TOPIC="banking.events"
DEFAULT_PARTITIONS="${PARTITIONS:-6}"
FRESH=no

log() { printf 'broker.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- small helpers -----------------------------------------------------------

# answers HOST PORT: a TCP connection succeeds within 2 s.
answers() {
    # shellcheck disable=SC2016 # $0/$1 expand in the inner bash, on purpose
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# answers_any "h1:p1,h2:p2": at least one of a bootstrap list answers.
answers_any() {
    local hp host port
    local -a list
    IFS=',' read -r -a list <<<"$1"
    for hp in "${list[@]}"; do
        hp="${hp// /}"
        hp="${hp#*://}" # tolerate PLAINTEXT://host:port
        [[ -n "$hp" ]] || continue
        if [[ "$hp" == *:* ]]; then
            host="${hp%:*}" port="${hp##*:}"
        else
            host="$hp" port=9092
        fi
        host="${host#[}" host="${host%]}"
        if answers "$host" "$port"; then
            return 0
        fi
    done
    return 1
}

state_get() { if [[ -f "$RUN_DIR/$1" ]]; then cat "$RUN_DIR/$1"; fi; }
state_set() { printf '%s\n' "$2" >"$RUN_DIR/$1"; }

is_positive_int() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

# Serialise start/stop/topic on one run directory, so parallel callers (tests)
# do not start two brokers. fd 9 must not leak into the broker process.
lock_run_dir() {
    mkdir -p "$RUN_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN_DIR/lock"
        flock 9
    fi
}

# terminate_pid PID GRACE WHAT: SIGTERM, then SIGKILL after GRACE seconds;
# returns once the process is gone.
terminate_pid() {
    local pid=$1 grace=$2 what=$3 deadline=$((SECONDS + $2))
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$what did not exit within $grace s of SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do
            sleep 0.1
        done
    fi
}

# --- Nisshi (the embedded Rust broker) ---------------------------------------

# Its storage engine: memory (default) or sqlite (RUN_DIR/nisshi.db).
nisshi_storage() {
    case "${NISSHI_STORAGE:-memory}" in
        memory) printf '%s\n' "memory://nisshi/" ;;
        # Relative to the broker's working directory, RUN_DIR.
        sqlite) printf '%s\n' "sqlite://nisshi.db" ;;
        *) die "NISSHI_STORAGE must be memory or sqlite, got '$NISSHI_STORAGE'" ;;
    esac
}

# Prints the path of the nisshi binary, installing the pinned version first
# when there is none; fails when it lacks the chosen storage engine.
ensure_nisshi() {
    local nisshi engine
    if ! nisshi=$(nisshi_find); then
        log "the embedded broker, Nisshi (a Kafka-compatible broker in Rust), is not installed."
        install_nisshi log || die "Nisshi could not be installed (see above)"
        nisshi=$(nisshi_find) || die "cargo install finished but no nisshi binary was found"
    fi
    # Its --help lists the engines it was built with: dynostore serves
    # memory://, libsql serves sqlite://.
    engine=dynostore
    [[ "${NISSHI_STORAGE:-memory}" == sqlite ]] && engine=libsql
    if ! "$nisshi" --help 2>/dev/null | grep -q "$engine"; then
        die "$nisshi was built without the '$engine' storage engine; reinstall: ${NISSHI_INSTALL[*]} --force"
    fi
    printf '%s\n' "$nisshi"
}

# Pid of the Nisshi this run directory started, if it is still alive.
our_nisshi_pid() {
    local pid
    pid=$(state_get pid)
    [[ -n "$pid" && "$(state_get kind)" == nisshi ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: it must still be a nisshi process.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'nisshi' || return 1
    printf '%s\n' "$pid"
}

# wait_until_answers HOST PORT [PID]: poll up to START_TIMEOUT seconds; fail
# early when PID exits.
wait_until_answers() {
    local host=$1 port=$2 pid=${3:-} deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if answers "$host" "$port"; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
    done
    answers "$host" "$port"
}

show_log_tail() {
    if [[ -f "$RUN_DIR/nisshi.log" ]]; then
        log "last lines of $RUN_DIR/nisshi.log:"
        tail -n 20 "$RUN_DIR/nisshi.log" >&2 || true
    fi
}

start_nisshi() {
    local nisshi pid url storage address="$BROKER_HOST:$BROKER_PORT"
    nisshi=$(ensure_nisshi)
    storage=$(nisshi_storage)
    url="tcp://$BROKER_HOST:$BROKER_PORT"

    if pid=$(our_nisshi_pid); then
        log "reusing Nisshi started earlier (pid $pid) on $address ($(state_get storage))"
        wait_until_answers "$BROKER_HOST" "$BROKER_PORT" "$pid" ||
            die "Nisshi (pid $pid) does not answer on $address; try '$0 stop' then start"
        storage=$(state_get storage)
    else
        rm -f "$RUN_DIR/pid"
        if answers "$BROKER_HOST" "$BROKER_PORT"; then
            die "something already listens on $address and this script did not start it (no live pid in $RUN_DIR/pid). Use it with KAFKA_BROKERS=$address, stop it, or choose another BROKER_PORT."
        fi
        if [[ "$FRESH" == yes && -f "$RUN_DIR/nisshi.db" ]]; then
            log "--fresh: deleting the stored log $RUN_DIR/nisshi.db"
            rm -f "$RUN_DIR/nisshi.db" "$RUN_DIR/nisshi.db-wal" "$RUN_DIR/nisshi.db-shm"
        fi
        log "starting Nisshi on $address (storage $storage), log in $RUN_DIR/nisshi.log"
        # setsid: its own session, so it outlives this script and the caller's
        # process group; runs in RUN_DIR so it reads no stray .env (Nisshi
        # loads one from its working directory) and its sqlite:// file lands
        # there. No initial rebalance delay, as the local Kafka's
        # group.initial.rebalance.delay.ms=0 (Nisshi's default is 3 s).
        (
            cd "$RUN_DIR"
            exec setsid nohup "$nisshi" broker \
                --listener-url "$url" \
                --advertised-listener-url "$url" \
                --storage-engine "$storage" \
                --group-initial-rebalance-delay 0s \
                >"$RUN_DIR/nisshi.log" 2>&1 </dev/null 9>&-
        ) &
        pid=$!
        state_set pid "$pid"
        state_set kind nisshi
        state_set storage "$storage"
        if ! wait_until_answers "$BROKER_HOST" "$BROKER_PORT" "$pid"; then
            show_log_tail
            if kill -0 "$pid" 2>/dev/null; then
                kill "$pid" 2>/dev/null || true
                die "Nisshi (pid $pid) did not answer on $address within ${START_TIMEOUT}s; stopped it"
            fi
            rm -f "$RUN_DIR/pid"
            die "Nisshi exited before answering on $address"
        fi
        log "Nisshi is up (pid $pid)"
    fi
    state_set kind nisshi
    state_set version "$("$nisshi" --version 2>/dev/null || echo 'nisshi (unknown version)')"
    state_set address "$address"
}

create_topic_nisshi() {
    local name=$1 partitions=$2 address nisshi out
    address=$(state_get address)
    nisshi=$(nisshi_find) || die "nisshi binary not found"
    if out=$(cd "$RUN_DIR" && "$nisshi" topic create "$name" --partitions "$partitions" \
        --broker "tcp://$address" 2>&1); then
        log "created topic $name with $partitions partitions on $address"
    elif grep -qiE 'already exists|TopicAlreadyExists' <<<"$out"; then
        log "topic $name already exists on $address"
        warn_partition_mismatch "$nisshi" "$address" "$name" "$partitions"
    else
        printf '%s\n' "$out" >&2
        die "nisshi topic create $name failed"
    fi
}

# An existing topic keeps its partition count; say so when it differs from the
# one asked for (best effort: needs python3 to read `nisshi topic list` JSON).
warn_partition_mismatch() {
    local nisshi=$1 address=$2 name=$3 want=$4 have
    command -v python3 >/dev/null 2>&1 || return 0
    have=$(cd "$RUN_DIR" && "$nisshi" topic list --broker "tcp://$address" 2>/dev/null |
        python3 -c 'import json, sys
for t in json.load(sys.stdin):
    if t.get("name") == sys.argv[1]:
        print(len(t.get("partitions") or []))' "$name" 2>/dev/null) || return 0
    if [[ -n "$have" && "$have" != "$want" ]]; then
        log "warning: topic $name has $have partitions, not $want; 'stop' then 'start --fresh' for a fresh topic"
    fi
}

stop_nisshi() {
    local pid
    if ! pid=$(our_nisshi_pid); then
        log "Nisshi from $RUN_DIR is not running"
        rm -f "$RUN_DIR/pid"
        return 0
    fi
    log "stopping Nisshi (pid $pid)"
    terminate_pid "$pid" 10 Nisshi
    rm -f "$RUN_DIR/pid"
    if [[ "$(state_get storage)" == sqlite://* ]]; then
        log "Nisshi stopped (its log stays in $RUN_DIR/nisshi.db)"
    else
        log "Nisshi stopped (in-memory storage: its topics are gone)"
    fi
}

# --- Apache Kafka (local JVM) -------------------------------------------------------

# The compose file's CLUSTER_ID: any fixed base64 UUID.
KAFKA_CLUSTER_ID="b4nk1ngEv3ntsPipe1ineQ"
# Kafka's own start script's JVM options (bin/kafka-run-class.sh).
KAFKA_JVM_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -XX:MaxInlineLevel=15 -Djava.awt.headless=true)
# Nodes of the local Kafka: --nodes at start, kept in RUN_DIR/nodes.
NODES=1

kafka_controller_port() { printf '%s\n' "${KAFKA_CONTROLLER_PORT:-$((BROKER_PORT + 1))}"; }

# Node I of the local Kafka (1-based). One node keeps the single-broker
# layout (RUN_DIR/kafka, RUN_DIR/pid, BROKER_PORT and the controller port);
# in a cluster node I has RUN_DIR/kafka-I, RUN_DIR/pid-I, client port
# BROKER_PORT + 2(I-1) and controller port one above it.
node_dir() { if ((NODES == 1)); then echo "$RUN_DIR/kafka"; else echo "$RUN_DIR/kafka-$1"; fi; }
node_pid_name() { if ((NODES == 1)); then echo pid; else echo "pid-$1"; fi; }
node_port() { echo $((BROKER_PORT + 2 * ($1 - 1))); }
node_controller_port() {
    if ((NODES == 1)); then kafka_controller_port; else echo $(($(node_port "$1") + 1)); fi
}
kafka_voters() {
    local i v=()
    for ((i = 1; i <= NODES; i++)); do v+=("$i@$BROKER_HOST:$(node_controller_port "$i")"); done
    (IFS=,; echo "${v[*]}")
}
kafka_addresses() {
    local i a=()
    for ((i = 1; i <= NODES; i++)); do a+=("$BROKER_HOST:$(node_port "$i")"); done
    (IFS=,; echo "${a[*]}")
}
# Replicas per partition and the in-sync minimum: 1 and 1 on one node;
# at most 3 and one fewer in a cluster.
kafka_replicas() { if ((NODES >= 3)); then echo 3; else echo "$NODES"; fi; }
kafka_min_isr() { local r; r=$(kafka_replicas); if ((r > 1)); then echo $((r - 1)); else echo 1; fi; }

# Java is there, or can be installed, and the jars are (or can be) copied.
kafka_possible() {
    kafka_installed && return 0
    command -v java >/dev/null 2>&1 || command -v apt-get >/dev/null 2>&1
}

ensure_kafka() {
    kafka_installed && return 0
    install_kafka log || die "Apache Kafka could not be installed (see above); use BROKER_KIND=nisshi for the embedded broker"
}

# Pid of node I (default 1) of the local Kafka, if it runs.
our_kafka_pid() {
    local pid
    pid=$(state_get "$(node_pid_name "${1:-1}")")
    [[ -n "$pid" && "$(state_get kind)" == kafka ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka.Kafka' || return 1
    printf '%s\n' "$pid"
}

# NODES from the run directory (1 when nothing was started).
load_nodes() {
    local n
    n=$(state_get nodes)
    NODES=${n:-1}
}

# Any node of the local Kafka runs.
any_kafka_running() {
    local i
    for ((i = 1; i <= NODES; i++)); do our_kafka_pid "$i" >/dev/null && return 0; done
    return 1
}

# The compose file's broker settings, for node I of NODES local nodes.
write_kafka_config() {
    local i=$1 dir port controller rf isr
    dir=$(node_dir "$i")
    port=$(node_port "$i")
    controller=$(node_controller_port "$i")
    rf=$(kafka_replicas)
    isr=$(kafka_min_isr)
    mkdir -p "$dir/logs"
    cat >"$dir/server.properties" <<PROPS
# Written by scripts/broker.sh: docker-compose.yml's settings for node $i of $NODES local node(s).
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(kafka_voters)
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$BROKER_HOST:$port,CONTROLLER://$BROKER_HOST:$controller
advertised.listeners=PLAINTEXT://$BROKER_HOST:$port
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
default.replication.factor=$rf
min.insync.replicas=$isr
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
}

# Launches node I's JVM on its configuration (formatting its log directory
# first when new); does not wait.
launch_kafka_node() {
    local i=$1 dir pid
    dir=$(node_dir "$i")
    if [[ ! -f "$dir/data/meta.properties" ]]; then
        log "formatting the log directory $dir/data (KRaft, cluster $KAFKA_CLUSTER_ID)"
        kafka_java "-Xmx256m" "$dir/logs" kafka.tools.StorageTool format \
            -t "$KAFKA_CLUSTER_ID" -c "$dir/server.properties" --ignore-formatted >&2 ||
            die "kafka-storage format failed"
    fi
    log "starting node $i on $BROKER_HOST:$(node_port "$i") (heap $KAFKA_HEAP), log in $dir/logs/server.log"
    : >"$dir/logs/server.log"
    (
        cd "$dir"
        # shellcheck disable=SC2086 # KAFKA_HEAP holds several options
        exec setsid nohup java $KAFKA_HEAP "${KAFKA_JVM_OPTS[@]}" \
            -Dkafka.logs.dir="$dir/logs" \
            -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" \
            -cp "$(kafka_home)/libs/*" kafka.Kafka "$dir/server.properties" \
            >"$dir/logs/stdout.log" 2>&1 </dev/null 9>&-
    ) &
    pid=$!
    state_set "$(node_pid_name "$i")" "$pid"
}

# Waits until node I serves clients; dies (stopping it) when it exits or
# START_TIMEOUT passes.
wait_kafka_node() {
    local i=$1 dir pid deadline=$((SECONDS + START_TIMEOUT))
    dir=$(node_dir "$i")
    pid=$(state_get "$(node_pid_name "$i")")
    until grep -q 'Kafka Server started' "$dir/logs/server.log" 2>/dev/null &&
        answers "$BROKER_HOST" "$(node_port "$i")"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$RUN_DIR/$(node_pid_name "$i")"
            log "last lines of $dir/logs/server.log and stdout.log:"
            tail -n 20 "$dir/logs/server.log" "$dir/logs/stdout.log" >&2 || true
            die "Apache Kafka node $i exited before it served clients"
        fi
        if ((SECONDS >= deadline)); then
            kill "$pid" 2>/dev/null || true
            die "Apache Kafka node $i (pid $pid) did not start within ${START_TIMEOUT}s; stopped it (see $dir/logs/server.log)"
        fi
        sleep 0.2
    done
}

start_kafka() {
    local i pid address version started=$SECONDS
    ensure_kafka
    version=$(kafka_version)
    address=$(kafka_addresses)
    if any_kafka_running; then
        local running
        running=$(state_get nodes)
        [[ "${running:-1}" == "$NODES" ]] ||
            die "the local Kafka in $RUN_DIR runs ${running:-1} node(s), not $NODES; '$0 stop' first"
        log "reusing Apache Kafka started earlier ($NODES node(s)) on $address"
        for ((i = 1; i <= NODES; i++)); do
            if pid=$(our_kafka_pid "$i"); then
                wait_until_answers "$BROKER_HOST" "$(node_port "$i")" "$pid" ||
                    die "Kafka node $i (pid $pid) does not answer; try '$0 stop' then start"
            else
                log "node $i is not running: starting it again"
                launch_kafka_node "$i"
                wait_kafka_node "$i"
            fi
        done
    else
        for ((i = 1; i <= NODES; i++)); do
            rm -f "$RUN_DIR/$(node_pid_name "$i")"
            answers "$BROKER_HOST" "$(node_port "$i")" &&
                die "something already listens on $BROKER_HOST:$(node_port "$i") and this script did not start it (no live pid in $RUN_DIR). Use it with KAFKA_BROKERS, stop it, or choose another BROKER_PORT."
            answers "$BROKER_HOST" "$(node_controller_port "$i")" &&
                die "the controller port $BROKER_HOST:$(node_controller_port "$i") is taken; choose another BROKER_PORT${KAFKA_CONTROLLER_PORT:+ or KAFKA_CONTROLLER_PORT}"
            if [[ "$FRESH" == yes && -d "$(node_dir "$i")/data" ]]; then
                log "--fresh: deleting the stored log $(node_dir "$i")/data"
                rm -rf "$(node_dir "$i")/data"
            fi
            write_kafka_config "$i"
        done
        state_set kind kafka
        state_set nodes "$NODES"
        log "starting Apache Kafka $version: $NODES node(s) in KRaft combined mode (broker + controller), replication $(kafka_replicas), min.insync.replicas $(kafka_min_isr)"
        # No node serves before a quorum of controllers runs: launch all,
        # then wait for each.
        for ((i = 1; i <= NODES; i++)); do launch_kafka_node "$i"; done
        for ((i = 1; i <= NODES; i++)); do wait_kafka_node "$i"; done
        log "Apache Kafka is up ($NODES node(s)) after $((SECONDS - started)) s"
    fi
    state_set kind kafka
    state_set nodes "$NODES"
    state_set version "Apache Kafka $version"
    state_set heap "$KAFKA_HEAP"
    state_set address "$address"
}

create_topic_kafka() {
    local name=$1 partitions=$2 address have rf isr
    address=$(state_get address)
    rf=$(kafka_replicas)
    isr=$(kafka_min_isr)
    kafka_java "-Xmx256m" "$RUN_DIR/tool-logs" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$address" --create --if-not-exists --topic "$name" \
        --partitions "$partitions" --replication-factor "$rf" \
        --config "min.insync.replicas=$isr" >&2 ||
        die "creating topic $name on $address failed"
    have=$(kafka_java "-Xmx256m" "$RUN_DIR/tool-logs" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$address" --describe --topic "$name" 2>/dev/null |
        grep -oE 'PartitionCount: *[0-9]+' | grep -oE '[0-9]+' || true)
    if [[ -n "$have" && "$have" != "$partitions" ]]; then
        log "warning: topic $name has $have partitions, not $partitions; 'stop' then 'start --fresh' for a fresh topic"
    else
        log "topic $name ready on $address ($partitions partitions, $rf replica(s), min.insync.replicas $isr)"
    fi
}

# Stops node I: SIGTERM (a controlled shutdown: its leaderships move first)
# or, with "kill", SIGKILL. Its log stays.
stop_kafka_node() {
    local i=$1 how=${2:-term} pid
    if ! pid=$(our_kafka_pid "$i"); then
        log "node $i of the local Kafka is not running"
        rm -f "$RUN_DIR/$(node_pid_name "$i")"
        return 0
    fi
    if [[ "$how" == kill ]]; then
        log "kill -9 of node $i (pid $pid)"
        kill -KILL "$pid" 2>/dev/null || true
    else
        log "stopping node $i (pid $pid; controlled shutdown)"
        terminate_pid "$pid" 60 "node $i"
    fi
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.1
    done
    rm -f "$RUN_DIR/$(node_pid_name "$i")"
}

stop_kafka() {
    local i
    if ! any_kafka_running; then
        log "Apache Kafka from $RUN_DIR is not running"
    fi
    # All nodes at once: the last ones of a cluster cannot shut down in a
    # controlled way once the others (the controller quorum) are gone.
    for ((i = 1; i <= NODES; i++)); do stop_kafka_node "$i" & done
    wait
    log "Apache Kafka stopped (its log stays under $RUN_DIR)"
}

# `start NODE`, `stop NODE`, `kill NODE`: one node of a local cluster.
node_command() {
    local what=$1 i=$2
    [[ "$(state_get kind)" == kafka ]] || die "'$what NODE' acts on a local Apache Kafka started here; none was ($RUN_DIR)"
    [[ "$i" =~ ^[1-9][0-9]*$ ]] && ((i <= NODES)) || die "NODE must be 1..$NODES, got '$i'"
    case "$what" in
        stop) stop_kafka_node "$i" term ;;
        kill) stop_kafka_node "$i" kill ;;
        start)
            if our_kafka_pid "$i" >/dev/null; then
                log "node $i already runs"
            else
                launch_kafka_node "$i"
                wait_kafka_node "$i"
                log "node $i is up"
            fi
            ;;
    esac
}

# --- Docker ------------------------------------------------------------------

docker_available() {
    command -v docker >/dev/null 2>&1 &&
        docker info >/dev/null 2>&1 &&
        docker compose version >/dev/null 2>&1
}

compose() { docker compose -f "$COMPOSE_FILE_PATH" "$@"; }

docker_image() {
    grep -m1 -oE 'apache/kafka:[^[:space:]"]+' "$COMPOSE_FILE_PATH" || echo 'apache/kafka (unknown tag)'
}

start_docker() {
    local owned=yes
    # Containers that run before we start them belong to someone else: reuse
    # them, but `stop` must leave them alone.
    if [[ -n "$(compose ps -q --status running kafka 2>/dev/null)" ]] &&
        ! [[ "$(state_get kind)" == docker && "$(state_get owned)" == yes ]]; then
        owned=no
        log "Kafka container already running (not started by this script); reusing it"
    fi
    log "using Docker: docker compose up -d --wait kafka ($(docker_image))"
    # Only the broker service: --wait treats the one-shot kafka-init as a
    # failure once it has exited (docker/compose#10596). Topics are created
    # below with kafka-topics.sh inside the broker container instead.
    compose up -d --wait kafka >&2
    state_set kind docker
    state_set version "$(docker_image)"
    state_set address "$DOCKER_ADDRESS"
    state_set owned "$owned"
    rm -f "$RUN_DIR/pid"
}

create_topic_docker() {
    local name=$1 partitions=$2
    compose exec -T kafka /opt/kafka/bin/kafka-topics.sh \
        --bootstrap-server "localhost:$DOCKER_PORT" \
        --create --if-not-exists --topic "$name" \
        --partitions "$partitions" --replication-factor 1 >&2
    log "topic $name ready (created with $partitions partitions unless it existed)"
}

stop_docker() {
    if [[ "$(state_get owned)" != yes ]]; then
        log "the Kafka containers were not started by this script; leaving them running"
        return 0
    fi
    log "docker compose down -v"
    compose down -v >&2
    state_set owned no
}

# --- external broker (KAFKA_BROKERS) -------------------------------------------

start_kafka_env() {
    log "using the broker at KAFKA_BROKERS=$KAFKA_BROKERS (it answers)"
    rm -f "$RUN_DIR/pid" "$RUN_DIR/owned"
    state_set kind kafka-env
    state_set version "external broker (KAFKA_BROKERS), version not probed"
    state_set address "$KAFKA_BROKERS"
}

# --- commands ------------------------------------------------------------------

create_topic() {
    local name=$1 partitions=$2
    case "$(state_get kind)" in
        nisshi) create_topic_nisshi "$name" "$partitions" ;;
        kafka) create_topic_kafka "$name" "$partitions" ;;
        docker) create_topic_docker "$name" "$partitions" ;;
        kafka-env)
            log "external broker (KAFKA_BROKERS): not creating topic $name here;" \
                "the producer's --partitions flag creates it"
            ;;
        *) die "no broker started from $RUN_DIR; run '$0 start' first" ;;
    esac
}

cmd_start() {
    local topic=$DEFAULT_TOPIC partitions=$DEFAULT_PARTITIONS make_topic=yes nodes="" node=""
    while (($#)); do
        case "$1" in
            --nodes)
                [[ $# -ge 2 ]] || die "--nodes needs a value"
                nodes=$2
                shift 2
                ;;
            [0-9]*)
                [[ -z "$node" ]] || die "start: one NODE at a time"
                node=$1
                shift
                ;;
            --topic)
                [[ $# -ge 2 ]] || die "--topic needs a value"
                topic=$2
                shift 2
                ;;
            --partitions)
                [[ $# -ge 2 ]] || die "--partitions needs a value"
                partitions=$2
                shift 2
                ;;
            --no-topic)
                make_topic=no
                shift
                ;;
            --fresh)
                FRESH=yes
                shift
                ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "start: unknown argument '$1' (see --help)" ;;
        esac
    done
    is_positive_int "$partitions" || die "--partitions must be a positive integer, got '$partitions'"
    is_positive_int "$BROKER_PORT" || die "BROKER_PORT must be a port number, got '$BROKER_PORT'"
    case "$BROKER_KIND" in auto | kafka-env | docker | kafka | nisshi) ;; *)
        die "BROKER_KIND must be auto, kafka-env, docker, kafka or nisshi, got '$BROKER_KIND'"
        ;;
    esac

    lock_run_dir
    load_nodes
    if [[ -n "$node" ]]; then
        node_command start "$node"
        return 0
    fi
    if [[ -n "$nodes" ]]; then
        is_positive_int "$nodes" || die "--nodes must be a positive integer, got '$nodes'"
        NODES=$nodes
        if ((NODES > 1)); then
            [[ "$BROKER_KIND" == auto || "$BROKER_KIND" == kafka ]] ||
                die "--nodes $NODES needs the local Apache Kafka (BROKER_KIND=kafka), not '$BROKER_KIND'"
            BROKER_KIND=kafka
        fi
    elif ! { [[ "$(state_get kind)" == kafka ]] && any_kafka_running; }; then
        NODES=1
    fi

    local kind
    kind=$(state_get kind)
    if [[ "$kind" == nisshi ]] && our_nisshi_pid >/dev/null &&
        [[ "$BROKER_KIND" == auto || "$BROKER_KIND" == nisshi ]]; then
        # Ours and alive: keep using it even if KAFKA_BROKERS now points at
        # it, so that `stop` still knows it has to stop it.
        start_nisshi
    elif [[ "$kind" == kafka ]] && any_kafka_running &&
        [[ "$BROKER_KIND" == auto || "$BROKER_KIND" == kafka ]]; then
        start_kafka
    elif [[ -n "${KAFKA_BROKERS:-}" && ("$BROKER_KIND" == auto || "$BROKER_KIND" == kafka-env) ]] &&
        answers_any "$KAFKA_BROKERS"; then
        start_kafka_env
    elif [[ "$BROKER_KIND" == kafka-env ]]; then
        die "BROKER_KIND=kafka-env but no broker answers at KAFKA_BROKERS='${KAFKA_BROKERS:-}'"
    else
        if [[ -n "${KAFKA_BROKERS:-}" && "$BROKER_KIND" == auto ]]; then
            log "KAFKA_BROKERS=$KAFKA_BROKERS does not answer; starting a broker instead"
        fi
        case "$BROKER_KIND" in
            docker)
                docker_available ||
                    die "BROKER_KIND=docker but no Docker engine answers ('docker info' failed) or 'docker compose' is missing"
                [[ "$BROKER_PORT" == "$DOCKER_PORT" ]] ||
                    die "docker-compose.yml serves port $DOCKER_PORT only; unset BROKER_PORT or use BROKER_KIND=kafka"
                start_docker
                ;;
            kafka) start_kafka ;;
            nisshi) start_nisshi ;;
            auto)
                if docker_available && [[ "$BROKER_PORT" == "$DOCKER_PORT" ]]; then
                    start_docker
                elif kafka_possible && { kafka_installed || install_kafka log; }; then
                    start_kafka
                else
                    log "Apache Kafka cannot run here (no Java, or Maven Central out of reach): using the embedded Rust broker"
                    start_nisshi
                fi
                ;;
        esac
    fi

    if [[ "$make_topic" == yes ]]; then
        create_topic "$topic" "$partitions"
    fi
    log "broker kind: $(state_get kind) ($(state_get version))"
    # The contract: the last line of stdout is the bootstrap address, alone.
    state_get address
}

cmd_topic() {
    local name="" partitions=$DEFAULT_PARTITIONS
    while (($#)); do
        case "$1" in
            --partitions)
                [[ $# -ge 2 ]] || die "--partitions needs a value"
                partitions=$2
                shift 2
                ;;
            -h | --help)
                usage
                exit 0
                ;;
            -*) die "topic: unknown option '$1' (see --help)" ;;
            *)
                [[ -z "$name" ]] || die "topic: only one topic name, got '$name' and '$1'"
                name=$1
                shift
                ;;
        esac
    done
    [[ -n "$name" ]] || die "usage: $0 topic NAME [--partitions N]"
    is_positive_int "$partitions" || die "--partitions must be a positive integer, got '$partitions'"
    lock_run_dir
    create_topic "$name" "$partitions"
}

cmd_stop() {
    lock_run_dir
    load_nodes
    if [[ -n "${1:-}" ]]; then
        node_command stop "$1"
        return 0
    fi
    case "$(state_get kind)" in
        nisshi) stop_nisshi ;;
        kafka) stop_kafka ;;
        docker) stop_docker ;;
        kafka-env) log "external broker (KAFKA_BROKERS): nothing to stop" ;;
        *) log "nothing was started from $RUN_DIR; nothing to stop" ;;
    esac
    rm -f "$RUN_DIR/address"
}

cmd_kill() {
    [[ -n "${1:-}" ]] || die "usage: $0 kill NODE"
    lock_run_dir
    load_nodes
    node_command kill "$1"
}

cmd_status() {
    local kind address version pid="-" up=no i
    load_nodes
    kind=$(state_get kind)
    address=$(state_get address)
    case "$kind" in
        nisshi | kafka)
            if [[ "$kind" == nisshi ]]; then
                pid=$(our_nisshi_pid) || pid="-"
            else
                local pids=()
                for ((i = 1; i <= NODES; i++)); do
                    pids+=("$(our_kafka_pid "$i" || echo -)")
                done
                pid="${pids[*]}"
                [[ "$pid" == *[0-9]* ]] || pid="-"
            fi
            if [[ "$pid" != "-" ]] && answers_any "$address"; then up=yes; fi
            ;;
        docker | kafka-env)
            if [[ -n "$address" ]] && answers_any "$address"; then up=yes; fi
            ;;
    esac
    printf 'kind:     %s\n' "${kind:-none (nothing started from this run dir)}"
    printf 'address:  %s\n' "${address:--}"
    printf 'pid:      %s\n' "$pid"
    version=$(state_get version)
    printf 'version:  %s\n' "${version:--}"
    if [[ "$kind" == nisshi ]]; then
        printf 'storage:  %s\n' "$(state_get storage)"
        printf 'log:      %s\n' "$RUN_DIR/nisshi.log"
    fi
    if [[ "$kind" == kafka ]]; then
        printf 'nodes:    %s (replication %s, min.insync.replicas %s)\n' "$NODES" "$(kafka_replicas)" "$(kafka_min_isr)"
        printf 'heap:     %s\n' "$(state_get heap)"
        printf 'log:      %s\n' "$(node_dir 1)/logs/server.log"
    fi
    printf 'answers:  %s\n' "$up"
    printf 'run dir:  %s\n' "$RUN_DIR"
    if [[ -z "$kind" || -z "$address" ]] && answers "$BROKER_HOST" "$BROKER_PORT"; then
        printf 'note:     something not started by this script listens on %s:%s\n' \
            "$BROKER_HOST" "$BROKER_PORT"
    fi
    [[ "$up" == yes ]]
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start) cmd_start "$@" ;;
        topic) cmd_topic "$@" ;;
        stop) cmd_stop "$@" ;;
        kill) cmd_kill "$@" ;;
        status) cmd_status "$@" ;;
        -h | --help | help) usage ;;
        "")
            usage >&2
            exit 2
            ;;
        *)
            log "unknown command '$cmd'"
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
