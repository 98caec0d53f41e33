# Stand-in for rust:<version>-slim-<debian> where that image cannot be
# pulled (built by scripts/compose-test.sh; never pushed): the local Debian
# base plus the host's own Rust toolchain (the one the project builds with,
# copied into the build context as rust/), in the official image's layout.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY rust/ /usr/local/rust/
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin \
    && for tool in /usr/local/rust/bin/*; do ln -s "$tool" /usr/local/cargo/bin/; done \
    && cargo --version && rustc --version
