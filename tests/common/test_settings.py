"""Flags fall back to MESHGUARD_* and compatibility env names; the command line wins."""

from __future__ import annotations

import argparse

import pytest

from meshguard.common.settings import SettingError, add_flag, env_name, fraction, repeated


def parser_with(environ: dict[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_flag(
        parser,
        "--grpc-port",
        help="port",
        type=int,
        default=8081,
        env_aliases=["GRPC_PORT"],
        environ=environ,
    )
    add_flag(parser, "--config", help="paths", repeatable=True, environ=environ)
    add_flag(
        parser,
        "--shadow-mode",
        help="shadow",
        boolean=True,
        default=False,
        env_aliases=["SHADOW_MODE"],
        environ=environ,
    )
    return parser


def test_env_name() -> None:
    assert env_name("--xff-trusted-hops") == "MESHGUARD_XFF_TRUSTED_HOPS"


def test_defaults_without_environment() -> None:
    args = parser_with({}).parse_args([])
    assert args.grpc_port == 8081
    assert repeated(args, "config") == []
    assert args.shadow_mode is False


def test_meshguard_env_beats_alias_and_flag_beats_env() -> None:
    env = {"MESHGUARD_GRPC_PORT": "9001", "GRPC_PORT": "9002", "SHADOW_MODE": "true"}
    args = parser_with(env).parse_args([])
    assert args.grpc_port == 9001
    assert args.shadow_mode is True
    assert parser_with(env).parse_args(["--grpc-port", "7"]).grpc_port == 7
    assert parser_with(env).parse_args(["--no-shadow-mode"]).shadow_mode is False


def test_alias_used_when_meshguard_name_absent() -> None:
    assert parser_with({"GRPC_PORT": "9002"}).parse_args([]).grpc_port == 9002


def test_repeatable_from_env_and_flags() -> None:
    env = {"MESHGUARD_CONFIG": "a.yaml, b/"}
    assert repeated(parser_with(env).parse_args([]), "config") == ["a.yaml", "b/"]
    args = parser_with(env).parse_args(["--config", "x", "--config", "y"])
    assert repeated(args, "config") == ["x", "y"]


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(SettingError, match="GRPC_PORT='http'"):
        parser_with({"GRPC_PORT": "http"})
    with pytest.raises(SettingError, match="SHADOW_MODE='maybe'"):
        parser_with({"SHADOW_MODE": "maybe"})


@pytest.mark.parametrize(("text", "value"), [("0", 0.0), ("0.25", 0.25), ("1", 1.0)])
def test_fraction_accepts_shares(text: str, value: float) -> None:
    assert fraction(text) == value


@pytest.mark.parametrize("text", ["-0.1", "1.5", "half"])
def test_fraction_refuses_the_rest(text: str) -> None:
    with pytest.raises(ValueError):
        fraction(text)
