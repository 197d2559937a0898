# One image for every meshguard service: `meshguard authz serve`, `meshguard ratelimit serve`,
# `meshguard webhook serve`, `meshguard ca serve`. The sidecar Envoy is the official Envoy image.
#
# The install steps are plain `pip` runs into a venv at ${VENV}; tests/chart/test_dockerfile.py
# replays them (with VENV and SRC pointed at temporary directories) and runs `meshguard --help`.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG VENV=/opt/meshguard
ARG SRC=/src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR ${SRC}
COPY pyproject.toml README.md ./
COPY services ./services
RUN python -m venv ${VENV}
RUN ${VENV}/bin/pip install --upgrade pip
# A regular (non-editable) install: the runtime stage copies only the venv, not the sources.
RUN ${VENV}/bin/pip install ${SRC}
RUN ${VENV}/bin/meshguard --version

FROM ${PYTHON_IMAGE}
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
