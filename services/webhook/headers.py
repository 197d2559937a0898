"""HTTP header names, header operations and string matches (reference section 3)."""

from __future__ import annotations

import functools
import re

from meshguard.webhook.fields import Node
from meshguard.webhook.primitives import regex_error

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PSEUDO = re.compile(r":[a-z]+")
_CLAIM_DOTTED = re.compile(r"@request\.auth\.claims(?:\.[^.\[\]]+)+")
_CLAIM_BRACKETS = re.compile(r"@request\.auth\.claims(?:\[[^\[\]]+\])+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def is_claim_key(name: str) -> bool:
    """A JWT-claim match key: ``@request.auth.claims.a.b`` or ``@request.auth.claims[a][b]``."""
    return bool(_CLAIM_DOTTED.fullmatch(name) or _CLAIM_BRACKETS.fullmatch(name))


@functools.lru_cache(maxsize=4096)
def header_name_error(name: str) -> str | None:
    if _TOKEN.fullmatch(name) or _PSEUDO.fullmatch(name):
        return None
    return f"invalid header name {name!r} (RFC 7230 token characters or an HTTP/2 pseudo-header)"


def header_value_error(value: str) -> str | None:
    if _CONTROL.search(value):
        return "header value must not contain control characters"
    if value.count("%") % 2:
        return f"header value {value!r} has an unbalanced '%' (write '%%' for a literal percent)"
    return None


def check_string_match(node: Node, *, allow_empty_prefix: bool) -> None:
    """``{exact|prefix|regex}``: RE2 regex, and an empty prefix only where it means "all"."""
    prefix = node.text("prefix")
    if prefix == "" and not allow_empty_prefix:
        node.error("prefix", "prefix must not be empty (an empty prefix matches every value)")
    regex = node.text("regex")
    if regex is not None:
        problem = regex_error(regex)
        if problem:
            node.error("regex", problem)


def check_header_matches(node: Node, key: str, *, allow_claims: bool) -> list[str]:
    """Header match map: valid names, valid string matches; returns the JWT-claim keys used."""
    matches = node.child(key)
    if matches is None:
        return []
    claims: list[str] = []
    for name in list(matches.data):
        path = f"{matches.path}[{name}]"
        if allow_claims and is_claim_key(name):
            claims.append(path)
        else:
            problem = header_name_error(name)
            if problem:
                matches.report.error(path, problem)
        value = matches.data[name]
        if isinstance(value, dict):
            check_string_match(Node(value, path, matches.report), allow_empty_prefix=False)
    return claims


def _is_authority(name: str) -> bool:
    return name.lower() in (":authority", "host")


def check_header_operations(node: Node, key: str) -> int:
    """``headers: {request, response}`` set/add/remove rules; returns authority rewrites count."""
    headers = node.child(key)
    if headers is None:
        return 0
    authority = 0
    for direction in ("request", "response"):
        ops = headers.child(direction)
        if ops is None:
            continue
        for verb in ("set", "add"):
            for name, value in (ops.string_map(verb) or {}).items():
                path = f"{ops.at(verb)}[{name}]"
                if direction == "request" and _is_authority(name):
                    authority += 1
                problem = _operation_name_error(name, direction, verb) or header_value_error(value)
                if problem:
                    ops.report.error(path, problem)
        for path, name in ops.strings("remove"):
            problem = _operation_name_error(name, direction, "remove")
            if problem:
                ops.report.error(path, problem)
    return authority


def _operation_name_error(name: str, direction: str, verb: str) -> str | None:
    if name.startswith(":"):
        if direction == "request" and verb != "remove" and name.lower() == ":authority":
            return None
        return f"{direction} header {verb} may not target the pseudo-header {name!r}"
    if name.lower() == "host" and (direction == "response" or verb == "remove"):
        return f"{direction} header {verb} may not target 'Host'"
    return header_name_error(name)
