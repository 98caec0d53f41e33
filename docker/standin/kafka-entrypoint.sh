#!/usr/bin/env bash
# Entry point of the stand-in Apache Kafka image (docker/standin/kafka.Dockerfile):
# the same contract as the official apache/kafka image for what
# docker-compose.yml uses. Every KAFKA_* environment variable becomes a
# server property (prefix dropped, lower case, "___" -> "-", "__" -> "_",
# "_" -> "."); CLUSTER_ID formats the log directory on first start; then the
# broker runs in the foreground (pid 1 after exec, so SIGTERM stops it cleanly).
set -euo pipefail
props=/opt/kafka/config/server.properties
: >"$props"
while IFS='=' read -r name value; do
    case "$name" in
        KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_LOG4J_OPTS | KAFKA_VERSION) continue ;;
        KAFKA_*) ;;
        *) continue ;;
    esac
    key=${name#KAFKA_}
    key=${key,,}
    key=${key//___/-}
    key=${key//__/@}
    key=${key//_/.}
    key=${key//@/_}
    printf '%s=%s\n' "$key" "$value" >>"$props"
done < <(env)
logdirs=$(sed -n 's/^log\.dirs=//p' "$props")
[[ -n "$logdirs" ]] || {
    echo "kafka-entrypoint: KAFKA_LOG_DIRS is not set" >&2
    exit 1
}
if [[ ! -f "${logdirs%%,*}/meta.properties" ]]; then
    [[ -n "${CLUSTER_ID:-}" ]] || {
        echo "kafka-entrypoint: CLUSTER_ID is not set and ${logdirs%%,*} is not formatted" >&2
        exit 1
    }
    /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool format \
        -t "$CLUSTER_ID" -c "$props" --ignore-formatted
fi
# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several options
exec java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m} ${KAFKA_OPTS:-} \
    -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
    -cp '/opt/kafka/libs/*' kafka.Kafka "$props"
