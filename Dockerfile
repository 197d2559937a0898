# Images of meshguard, from one build:
#   docker build -t ghcr.io/meshguard/meshguard:0.1.0 .                   # the services (default)
#   docker build --target proxy -t ghcr.io/meshguard/proxy:0.1.0 .        # the injected sidecar
# The services image runs `meshguard authz serve`, `ratelimit serve`, `webhook serve` and
# `ca serve`. The sidecar image adds the official Envoy binary (ENVOY_IMAGE) and iptables to it,
# for `meshguard agent` and the capture init container.
#
# The install steps are plain `pip` runs into a venv at ${VENV}; tests/chart/test_dockerfile.py
# replays them (with VENV and SRC pointed at temporary directories) and runs `meshguard --help`.
ARG PYTHON_IMAGE=python:3.11-slim
ARG ENVOY_IMAGE=envoyproxy/envoy:v1.40.0

FROM ${PYTHON_IMAGE} AS build
ARG VENV=/opt/meshguard
ARG SRC=/src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR ${SRC}
COPY pyproject.toml README.md ./
COPY services ./services
RUN python -m venv ${VENV}
RUN ${VENV}/bin/pip install --upgrade pip
# A regular (non-editable) install: the later stages copy only the venv, not the sources.
RUN ${VENV}/bin/pip install ${SRC}
RUN ${VENV}/bin/meshguard --version

FROM ${ENVOY_IMAGE} AS envoy

FROM ${PYTHON_IMAGE} AS proxy
ARG VENV=/opt/meshguard
ENV PATH=${VENV}/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends iptables \
    && rm -rf /var/lib/apt/lists/*
COPY --from=envoy /usr/local/bin/envoy /usr/local/bin/envoy
COPY --from=build ${VENV} ${VENV}
# The injector runs the sidecar as UID 1337 (its traffic is exempt from capture).
USER 1337:1337
ENTRYPOINT ["meshguard"]
CMD ["agent"]

FROM ${PYTHON_IMAGE} AS runtime
ARG VENV=/opt/meshguard
ENV PATH=${VENV}/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 meshguard \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin meshguard
COPY --from=build ${VENV} ${VENV}
USER 10001:10001
ENTRYPOINT ["meshguard"]
CMD ["--help"]
