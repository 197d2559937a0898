"""Command-line flags with environment fallbacks, the way every meshguard service reads settings.

``--grpc-port`` falls back to ``MESHGUARD_GRPC_PORT`` and then to any extra names a service
accepts for compatibility (envoyproxy/ratelimit's ``GRPC_PORT``, say). A flag on the command
line always wins. Each service turns the parsed namespace into one frozen settings object.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingError(ValueError):
    """An environment value that does not parse; names the variable."""


def env_name(flag: str) -> str:
    """``--grpc-port`` → ``MESHGUARD_GRPC_PORT``."""
    return "MESHGUARD_" + flag.lstrip("-").replace("-", "_").upper()


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def fraction(text: str) -> float:
    """A share within 0..1, e.g. how many decisions a sampled log keeps."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a share within 0..1, got {text}")
    return value


def add_flag(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    help: str,
    type: Callable[[str], Any] = str,
    default: Any = None,
    env_aliases: Sequence[str] = (),
    repeatable: bool = False,
    boolean: bool = False,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Declare ``flag`` whose default comes from the environment when set there.

    ``repeatable`` flags collect a list; their environment value is comma-separated.
    ``boolean`` flags take no value on the command line (``--flag`` / ``--no-flag``).
    """
    env = os.environ if environ is None else environ
    names = (env_name(flag), *env_aliases)
    raw = next((env[n] for n in names if n in env), None)
    source = next((n for n in names if n in env), None)
    value = default
    if raw is not None:
        try:
            if boolean:
                value = parse_bool(raw)
            elif repeatable:
                value = [type(part.strip()) for part in raw.split(",") if part.strip()]
            else:
                value = type(raw)
        except ValueError as exc:
            raise SettingError(f"{source}={raw!r}: {exc}") from exc
    env_help = " / ".join(names)
    full_help = f"{help} (env {env_help}; default {value!r})"
    dest = flag.lstrip("-").replace("-", "_")
    if boolean:
        parser.add_argument(
            flag, dest=dest, action=argparse.BooleanOptionalAction, default=value, help=full_help
        )
    elif repeatable:
        parser.add_argument(
            flag, dest=dest, action="append", type=type, default=None, help=full_help
        )
        parser.set_defaults(**{f"_{dest}_env_default": value or []})
    else:
        parser.add_argument(flag, dest=dest, type=type, default=value, help=full_help)


def repeated(args: argparse.Namespace, dest: str) -> list[Any]:
    """The values of a repeatable flag: the command line's if given, else the environment's."""
    given = getattr(args, dest)
    if given is not None:
        return list(given)
    return list(getattr(args, f"_{dest}_env_default", []))
