# syntax=docker/dockerfile:1
# What tasks run in: Python, Robot Framework and the RunWhen keyword libraries, the steward
# binary (runner and launcher), and the command-line tools codebundles call. Build from the
# repository root after the steward image:
#   docker build -f deploy/docker/runtime.Dockerfile \
#     --build-arg STEWARD_IMAGE=<registry>/steward:0.1.0 -t <registry>/runtime:0.1.0 .
# Versions here are listed in deploy/images.yaml; a test keeps them in step with it and with the
# pins in crates/steward-runtime/src/python.rs.

ARG STEWARD_IMAGE=example.invalid/steward/steward:0.1.0
ARG PYTHON_IMAGE=docker.io/library/python:3.12.11-slim-bookworm

FROM ${STEWARD_IMAGE} AS steward

FROM ${PYTHON_IMAGE}
ARG TARGETARCH
ARG KUBECTL_VERSION=v1.33.4
ARG ROBOTFRAMEWORK_VERSION=7.5
ARG RW_CORE_KEYWORDS_VERSION=2026.8.11.2
ARG RW_CLI_KEYWORDS_VERSION=2026.3.25.1

# The tools codebundles expect on PATH: kubectl, jq, curl, dig, git.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl jq bind9-dnsutils git openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && arch="${TARGETARCH:-amd64}" \
 && curl -fsSLo /tmp/kubectl "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl" \
 && curl -fsSLo /tmp/kubectl.sha256 "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl.sha256" \
 && echo "$(cat /tmp/kubectl.sha256)  /tmp/kubectl" | sha256sum -c - \
 && install -m 0755 /tmp/kubectl /usr/local/bin/kubectl \
 && rm /tmp/kubectl /tmp/kubectl.sha256 \
 && useradd --uid 10001 --gid 0 --create-home --home-dir /home/steward --shell /usr/sbin/nologin steward \
 && mkdir -p /var/lib/steward /var/cache/steward \
 && chown 10001:0 /var/lib/steward /var/cache/steward \
 && chmod 0770 /var/lib/steward /var/cache/steward

COPY --from=steward /usr/local/bin/steward /usr/local/bin/steward

# The runtime keys its task venv by interpreter path, Python version and pins; the same
# interpreter and cache directory at build time and at run time mean the venv built below is
# the one tasks use, so no PyPI is needed when a task runs.
ENV STEWARD_PYTHON=/usr/local/bin/python3 \
    STEWARD_CACHE_DIR=/var/cache/steward \
    STEWARD_DATA_DIR=/var/lib/steward \
    HOME=/home/steward
USER 10001
WORKDIR /home/steward

# Build the task venv by running a one-line task through the real runtime, then check that it
# holds exactly the pinned versions.
RUN mkdir -p /tmp/warm/codebundles/warm \
 && printf '*** Tasks ***\nWarm Up\n    Log    ready\n' > /tmp/warm/codebundles/warm/runbook.robot \
 && steward run /tmp/warm/codebundles/warm/runbook.robot --out /tmp/warm/out \
 && venv="$(ls -d /var/cache/steward/python/py*/ | head -n 1)" \
 && "${venv}bin/python" -c 'import sys; from importlib.metadata import version as v; \
      want = dict(zip(sys.argv[1::2], sys.argv[2::2])); got = {n: v(n) for n in want}; \
      sys.exit(0 if got == want else f"task venv holds {got}, the image pins {want}")' \
      robotframework "${ROBOTFRAMEWORK_VERSION}" \
      rw-core-keywords "${RW_CORE_KEYWORDS_VERSION}" \
      rw-cli-keywords "${RW_CLI_KEYWORDS_VERSION}" \
 && rm -rf /tmp/warm \
 && chmod -R g=u /var/cache/steward

ENTRYPOINT ["/usr/local/bin/steward"]
CMD ["--help"]
