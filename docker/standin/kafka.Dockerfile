# Stand-in for apache/kafka:<version> where that image cannot be pulled
# (built by scripts/compose-test.sh; never pushed). Apache Kafka's own jars
# from Maven Central (scripts/kafka/pom.xml, copied into the build context
# as libs/) on OpenJDK 17 from Debian, with the paths and the KAFKA_*
# environment contract of the official image that docker-compose.yml uses:
# /opt/kafka/bin/kafka-topics.sh, kafka-broker-api-versions.sh,
# /var/lib/kafka/data.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1000 --create-home --shell /bin/bash appuser \
    && mkdir -p /opt/kafka/bin /opt/kafka/config /var/lib/kafka/data \
    && chown appuser:appuser /opt/kafka/config /var/lib/kafka/data
COPY libs/ /opt/kafka/libs/
COPY log4j2.properties tools-log4j2.properties /opt/kafka/config/
COPY kafka-entrypoint.sh kafka-run-class.sh /opt/kafka/bin/
RUN printf '#!/bin/sh\nexec /opt/kafka/bin/kafka-run-class.sh %s "$@"\n' org.apache.kafka.tools.TopicCommand >/opt/kafka/bin/kafka-topics.sh \
    && printf '#!/bin/sh\nexec /opt/kafka/bin/kafka-run-class.sh %s "$@"\n' org.apache.kafka.tools.BrokerApiVersionsCommand >/opt/kafka/bin/kafka-broker-api-versions.sh \
    && printf '#!/bin/sh\nexec /opt/kafka/bin/kafka-run-class.sh %s "$@"\n' kafka.tools.StorageTool >/opt/kafka/bin/kafka-storage.sh \
    && chmod 0755 /opt/kafka/bin/*.sh
USER 1000:1000
WORKDIR /opt/kafka
VOLUME /var/lib/kafka/data
EXPOSE 9092
# Like the official image: no ENTRYPOINT, so a command (kafka-init's) replaces it.
CMD ["/opt/kafka/bin/kafka-entrypoint.sh"]
