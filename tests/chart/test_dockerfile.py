"""The Dockerfile builds a working image: its build stage is replayed here without a Docker engine.

The build stage's ARG / ENV / WORKDIR / COPY / RUN steps run in a temporary directory, with the
build args VENV and SRC pointed inside it (as ``docker build --build-arg`` would), then the
resulting venv must run ``meshguard --help``. The runtime stage is checked for what the chart
relies on: non-root user 10001 and ``meshguard`` as the entrypoint.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meshguard.webhook.injection.config import InjectionConfig
from tests.chart.helm import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions by stage name (``FROM ... AS name``); the global ARGs under ``""``."""
    result: dict[str, list[tuple[str, str]]] = {"": []}
    current = ""
    for word, rest in instructions():
        if word == "FROM":
            current = rest.split(" AS ")[1] if " AS " in rest else rest
            result[current] = []
        result[current].append((word, rest))
    return result


def _expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables[m.group(1) or m.group(2)], text)


def _arg(rest: str, variables: dict[str, str], build_args: dict[str, str]) -> None:
    name, _, default = rest.partition("=")
    variables[name] = build_args.get(name, _expand(default, variables))


def test_build_stage_installs_a_working_meshguard(tmp_path: Path) -> None:
    root = tmp_path / "build"
    build_args = {"VENV": str(root / "opt" / "meshguard"), "SRC": str(root / "src")}
    shims = tmp_path / "shims"
    shims.mkdir()
    # The image's `python` is a plain CPython 3.11; here, the interpreter under the test venv.
    (shims / "python").symlink_to(Path(getattr(sys, "_base_executable", sys.executable)))
    variables: dict[str, str] = {}
    env = {"PATH": f"{shims}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    for key in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE"):
        if key in os.environ:
            env[key] = os.environ[key]
    by_name = stages()
    for _, rest in by_name[""]:
        _arg(rest, variables, build_args)
    workdir = root
    for word, rest in by_name["build"][1:]:
        if word == "ARG":
            _arg(rest, variables, build_args)
        elif word == "ENV":
            for pair in shlex.split(_expand(rest, variables)):
                name, _, value = pair.partition("=")
                env[name] = value
        elif word == "WORKDIR":
            workdir = Path(_expand(rest, variables))
            workdir.mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            *sources, dest = shlex.split(_expand(rest, variables))
            target = workdir / dest
            for source in sources:
                if (REPO / source).is_dir():
                    shutil.copytree(
                        REPO / source, target, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy(REPO / source, target)
        elif word == "RUN":
            command = _expand(rest, variables)
            done = subprocess.run(
                ["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, (
                f"RUN {command}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        else:
            pytest.fail(f"the build replay does not know {word}; teach it or keep the stage simple")
    meshguard = Path(build_args["VENV"]) / "bin" / "meshguard"
    done = subprocess.run(
        [meshguard, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    commands = set(re.findall(r"^    (\w+)\s", done.stdout, re.MULTILINE))
    assert commands >= {"authz", "ratelimit", "webhook", "ca"}, done.stdout
    # a regular install: the venv does not point back at the sources
    assert not list(Path(build_args["VENV"]).glob("lib/python*/site-packages/__editable__*"))


def test_runtime_stage_is_slim_non_root_and_runs_meshguard() -> None:
    by_name = stages()
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in by_name[""]
    assert list(by_name)[-1] == "runtime", "a plain `docker build` builds the services image"
    runtime = by_name["runtime"]
    assert runtime[0] == ("FROM", "${PYTHON_IMAGE} AS runtime")
    copies = [rest for word, rest in runtime if word == "COPY"]
    assert copies == ["--from=build ${VENV} ${VENV}"], "only the venv leaves the build stage"
    assert [rest for word, rest in runtime if word == "USER"] == ["10001:10001"]
    entrypoint = [json.loads(rest) for word, rest in runtime if word == "ENTRYPOINT"]
    assert entrypoint == [["meshguard"]]
    venvs = {
        name: next(rest for word, rest in stage if word == "ARG" and rest.startswith("VENV="))
        for name, stage in by_name.items()
        if name in ("build", "runtime", "proxy")
    }
    assert len(set(venvs.values())) == 1, "a venv only works at the path it was created at"


def test_proxy_stage_adds_the_official_envoy_and_iptables() -> None:
    by_name = stages()
    assert ("ARG", "ENVOY_IMAGE=envoyproxy/envoy:v1.40.0") in by_name[""]
    assert by_name["envoy"] == [("FROM", "${ENVOY_IMAGE} AS envoy")]
    proxy = by_name["proxy"]
    copies = [rest for word, rest in proxy if word == "COPY"]
    assert "--from=envoy /usr/local/bin/envoy /usr/local/bin/envoy" in copies
    assert "--from=build ${VENV} ${VENV}" in copies
    assert any("iptables" in rest for word, rest in proxy if word == "RUN")
    uid = InjectionConfig().proxy_uid
    assert [rest for word, rest in proxy if word == "USER"] == [f"{uid}:{uid}"]


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/").removeprefix("**/")
            if fnmatch.fnmatch(path, bare) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], bare):
                verdict = not negated
        return verdict

    copied = [
        source
        for word, rest in instructions()
        if word == "COPY" and not rest.startswith("--from")
        for source in shlex.split(rest)[:-1]
    ]
    assert copied and all(not ignored(source.rstrip("/")) for source in copied)
    for path in (".venv", ".git", "tests", "charts", "services/__pycache__"):
        assert ignored(path), path
