#!/usr/bin/env bash
# kafka-run-class.sh CLASS ARGS...: runs a class of the broker's jars with a
# small heap and the tools' log settings (warnings on stderr).
set -euo pipefail
# shellcheck disable=SC2086 # KAFKA_TOOLS_HEAP holds several options
exec java ${KAFKA_TOOLS_HEAP:--Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC} \
    -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
    -cp '/opt/kafka/libs/*' "$@"
