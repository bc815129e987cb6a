# syntax=docker/dockerfile:1
# The steward binary in a small non-root image: the platform, `steward discover`, and the
# runner when tasks run as pods. Build from the repository root:
#   docker build -f deploy/docker/steward.Dockerfile -t <registry>/steward:0.1.0 .
# Versions here are listed in deploy/images.yaml; a test keeps the two in step.

ARG RUST_IMAGE=docker.io/library/rust:1.95.0-slim-bookworm
ARG DEBIAN_IMAGE=docker.io/library/debian:12.11-slim

FROM ${RUST_IMAGE} AS build
# aws-lc-sys (rustls' crypto) builds C code with cmake.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake make perl pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The binary embeds codecollections/ and examples/local-workspace (include_dir).
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY codecollections codecollections
COPY examples examples
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p steward-cli --bin steward \
 && install -D -m 0755 target/release/steward /out/steward

FROM ${DEBIAN_IMAGE}
# git: CodeCollections at a git ref are checked out with the git CLI; ca-certificates: HTTPS to
# the platform, object stores and git hosts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --gid 0 --create-home --home-dir /home/steward --shell /usr/sbin/nologin steward \
 && mkdir -p /var/lib/steward \
 && chown 10001:0 /var/lib/steward \
 && chmod 0770 /var/lib/steward
COPY --from=build /out/steward /usr/local/bin/steward
# Group 0 owns the writable directories, so an arbitrary UID in group 0 (OpenShift) works too.
ENV STEWARD_DATA_DIR=/var/lib/steward \
    HOME=/home/steward
USER 10001
WORKDIR /home/steward
ENTRYPOINT ["/usr/local/bin/steward"]
CMD ["--help"]
