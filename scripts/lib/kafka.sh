# shellcheck shell=bash
# Apache Kafka without Docker: where it is installed and how. Sourced by
# scripts/setup.sh and scripts/broker.sh, which install it before anything is
# built; testkit (Rust) runs it (testkit/src/kafka.rs, settings.rs), and a
# test checks that both read the same version.
#
#   version   the apache/kafka image tag in docker-compose.yml (written once)
#   home      $KAFKA_HOME_DIR, default ~/.cache/banking-pipeline/kafka-<version>
#   libs      <home>/libs: the server's jars, copied from Maven Central by
#             scripts/kafka/pom.xml; <home>/.complete marks a whole copy

KAFKA_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_REPO_ROOT=$(cd "$KAFKA_LIB_DIR/../.." && pwd)

# The Apache Kafka version, from the compose file's image tag.
kafka_version() {
    local tag
    tag=$(grep -m1 -oE 'apache/kafka:[0-9][0-9A-Za-z._-]*' "$KAFKA_REPO_ROOT/docker-compose.yml") || return 1
    printf '%s\n' "${tag#apache/kafka:}"
}

kafka_home() {
    printf '%s\n' "${KAFKA_HOME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/banking-pipeline/kafka-$(kafka_version)}"
}

kafka_installed() {
    [[ -f "$(kafka_home)/.complete" ]] && command -v java >/dev/null 2>&1
}

# install_kafka LOG_FN: copies the server's jars from Maven Central into
# <home>/libs (skipped when already there). Installs java and mvn from
# Debian's packages when missing. Returns non-zero, having said why through
# LOG_FN, when that cannot be done (then the embedded broker is the fallback).
install_kafka() {
    local say=$1 version home started
    version=$(kafka_version) || {
        "$say" "cannot read the apache/kafka image tag from docker-compose.yml"
        return 1
    }
    home=$(kafka_home)
    if kafka_installed; then
        "$say" "Apache Kafka $version present in $home"
        return 0
    fi
    local need=()
    command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || need+=(maven)
    if ((${#need[@]})); then
        if ! command -v apt-get >/dev/null 2>&1; then
            "$say" "java or mvn is missing and this is not a Debian-like system; install OpenJDK 17 and Maven to use Apache Kafka"
            return 1
        fi
        "$say" "installing from Debian's packages for Apache Kafka: ${need[*]}"
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update >&2 &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >&2 || {
            "$say" "could not install ${need[*]}"
            return 1
        }
    fi
    "$say" "installing Apache Kafka $version from Maven Central into $home/libs (mvn dependency:copy-dependencies)"
    started=$SECONDS
    rm -rf "$home/libs"
    mkdir -p "$home"
    local mvn_log="$home/install.log"
    if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_LIB_DIR/../kafka/pom.xml" -Dkafka.version="$version" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/libs" \
        >"$mvn_log" 2>&1; then
        tail -n 30 "$mvn_log" >&2
        "$say" "mvn could not fetch Apache Kafka $version from Maven Central (log: $mvn_log)"
        return 1
    fi
    ls "$home/libs"/kafka_2.13-"$version".jar >/dev/null 2>&1 || {
        "$say" "the copy in $home/libs lacks kafka_2.13-$version.jar"
        return 1
    }
    printf '%s\n' "$version" >"$home/.complete"
    "$say" "Apache Kafka $version installed in $((SECONDS - started)) s ($(du -sh "$home/libs" | cut -f1))"
}

# kafka_java HEAP LOG_DIR CLASS ARGS...: runs a class of the server's jars.
kafka_java() {
    local heap=$1 logs=$2
    shift 2
    java $heap -Dkafka.logs.dir="$logs" \
        -Dlog4j2.configurationFile="$KAFKA_LIB_DIR/../kafka/log4j2.properties" \
        -cp "$(kafka_home)/libs/*" "$@"
}
