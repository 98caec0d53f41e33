# No `# syntax=` line: it makes BuildKit pull the Dockerfile frontend image
# from Docker Hub before anything else, so an offline build fails at once;
# the engine's built-in frontend has everything used here (cache mounts).
#
# The pipeline's three binaries (and the store's query tool) in one small
# image, run as a non-root user. docker-compose.yml builds it once for the
# producer, consumer-pull and consumer-push services:
#
#   docker compose build            # or: docker build -t banking-pipeline .
#   docker run --rm banking-pipeline producer --help
#
# Stage 1 compiles with the Debian packages librdkafka's bundled build
# needs (the same list as scripts/setup.sh); stage 2 keeps only the
# binaries and the shared libraries they link (OpenSSL, zlib).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target directories are BuildKit caches: a rebuild after
# a code change compiles only the workspace's crates.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p producer -p consumer-pull -p consumer-push \
    && cargo build --release --locked -p store --example query \
    && mkdir -p /out \
    && cp target/release/producer target/release/consumer-pull target/release/consumer-push /out/ \
    && cp target/release/examples/query /out/banking-query

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 banking \
    && useradd --system --uid 10001 --gid banking --home-dir /data --shell /usr/sbin/nologin banking \
    && mkdir -p /data \
    && chown banking:banking /data
COPY --from=build /out/ /usr/local/bin/
# The producer service's entry: skips a range (FIRST_ID, COUNT) already sent.
COPY docker/produce-once.sh /usr/local/bin/produce-once
# Named volumes mounted here start with this owner, so the databases are
# written by the non-root user.
WORKDIR /data
USER 10001:10001
# The Prometheus endpoint when --metrics-addr 0.0.0.0:9464 is given.
EXPOSE 9464
ENV RUST_LOG=info
CMD ["producer", "--help"]
