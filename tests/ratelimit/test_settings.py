"""The reference's environment names for the per-second Redis and the local cache work."""

from __future__ import annotations

import argparse
import re

import pytest

from meshguard.ratelimit.limiter import CACHE_ENTRY_BYTES
from meshguard.ratelimit.settings import RateLimitSettings, add_arguments, from_args
from tests.harness.paths import REPO


def settings(environ: dict[str, str], *argv: str) -> RateLimitSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, environ)
    return from_args(parser.parse_args(["--config", "x", *argv]), environ)


def test_reference_per_second_variables() -> None:
    found = settings(
        {
            "REDIS_URL": "main:6379",
            "REDIS_TLS": "true",
            "REDIS_PERSECOND": "true",
            "REDIS_PERSECOND_URL": "fast:6380",
            "REDIS_PERSECOND_TYPE": "sentinel",
            "REDIS_PERSECOND_AUTH": "user:pw",
            "REDIS_PERSECOND_PIPELINE_WINDOW": "150us",
        }
    )
    second = found.per_second_redis
    assert second is not None and found.redis.url == "main:6379"
    assert (second.url, second.type, second.password) == ("fast:6380", "sentinel", "user:pw")
    assert second.pipeline_window == pytest.approx(150e-6)
    assert not second.tls  # REDIS_PERSECOND_TLS, not REDIS_TLS, decides for this one
    assert settings({}).per_second_redis is None


def test_per_second_without_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match="REDIS_PERSECOND_URL"):
        settings({"REDIS_PERSECOND": "true"})


def test_local_cache_size_in_bytes() -> None:
    size = str(1000 * CACHE_ENTRY_BYTES)
    assert settings({"LOCAL_CACHE_SIZE_IN_BYTES": size}).service.local_cache_entries == 1000
    assert settings({}).service.local_cache_entries == 0
    explicit = settings({"LOCAL_CACHE_SIZE_IN_BYTES": size}, "--local-cache-entries", "7")
    assert explicit.service.local_cache_entries == 7


def test_grpc_server_defaults_to_lean_and_is_checked() -> None:
    assert settings({}).grpc_server == "lean"
    assert settings({"MESHGUARD_GRPC_SERVER": "grpcio"}).grpc_server == "grpcio"
    with pytest.raises(ValueError, match="--grpc-server"):
        settings({}, "--grpc-server", "h3")


def test_every_flag_and_environment_name_is_documented() -> None:
    docs = (REPO / "README.md").read_text()
    parser = argparse.ArgumentParser()
    add_arguments(parser, {})
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        flag = action.option_strings[0]
        assert f"`{flag}`" in docs or f"`{flag}` (repeatable)" in docs, flag
        for name in re.findall(r"env ([A-Z0-9_ /]+?)[;)]", action.help or "")[0].split(" / "):
            assert f"`{name}`" in docs or f"`{name}` (comma list)" in docs, name
