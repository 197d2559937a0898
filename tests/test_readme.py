"""The README is the users' reference: its first lines are the two newcomer commands, and
every flag of every command is documented there."""

from __future__ import annotations

import argparse

import pytest

from meshguard.cli import build_parser

from .harness.paths import REPO

README = (REPO / "README.md").read_text()


def test_first_lines_start_the_stack_and_run_the_tests() -> None:
    commands = [line for line in README.splitlines()[:8] if ".venv/bin/" in line]
    assert "meshguard up" in commands[0]
    assert commands[1].split("#")[0].rstrip().endswith(".venv/bin/pytest")


def _subparser(path: list[str]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


@pytest.mark.parametrize(
    "command",
    [
        ["up"],
        ["validate"],
        ["authz", "serve"],
        ["explain"],
        ["ratelimit", "serve"],
        ["ratelimit", "check"],
        ["webhook", "serve"],
        ["analyze"],
        ["ca", "serve"],
        ["agent"],
        ["inject"],
    ],
    ids=" ".join,
)
def test_every_flag_is_documented(command: list[str]) -> None:
    parser = _subparser(command)
    missing = [
        action.option_strings[-1]
        for action in parser._actions
        if action.option_strings
        and action.dest != "help"
        and not any(f"`{flag}" in README for flag in action.option_strings)
    ]
    assert missing == [], f"meshguard {' '.join(command)}: document these in README.md"
