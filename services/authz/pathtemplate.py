"""Istio path templates (``{*}`` / ``{**}``), checked and compiled like Envoy's uri_template.

A ``paths`` value containing an operator is matched against the whole (query-stripped) path:
``{*}`` is exactly one non-empty segment, ``{**}`` is zero or more characters including ``/``.
"""

from __future__ import annotations

import re

SINGLE = "{*}"
MULTI = "{**}"
# RFC 3986 pchar without '*', which Istio reserves for its own wildcards.
_PCHAR = "A-Za-z0-9\\-._~!$&'()+,;=:@%"
_LITERAL = re.compile(f"[{_PCHAR}]*")
_SEGMENT_RE = f"[{_PCHAR}]+"
_GLOB_RE = f"[{_PCHAR}/]*"


def is_template(value: str) -> bool:
    return SINGLE in value or MULTI in value


def problems(value: str) -> list[str]:
    """Why ``value`` is not an acceptable ``paths`` entry (empty when it is fine).

    Plain values may contain anything but braces; a template must also be made of whole
    operator segments and pchar literals, with ``{**}`` as its last operator.
    """
    if not is_template(value):
        if "{" in value or "}" in value:
            return [f"path {value!r} uses '{{...}}' that is not a supported template"]
        return []
    found: list[str] = []
    if not value.startswith("/"):
        found.append(f"path template {value!r} must start with '/'")
    seen_multi = False
    for segment in value.split("/")[1:]:
        if segment in (SINGLE, MULTI):
            if seen_multi:
                found.append(f"path template {value!r}: {{**}} must be the last template operator")
                break
            seen_multi = segment == MULTI
        elif "{" in segment or "}" in segment:
            found.append(
                f"path template {value!r}: an operator must be a whole segment and only "
                "{*} or {**} are supported"
            )
            break
        elif not _LITERAL.fullmatch(segment):
            found.append(f"path template {value!r}: segment {segment!r} is not a valid URI pchar")
            break
    return found


def compile_template(value: str) -> re.Pattern[str]:
    """A regex that full-matches the paths ``value`` (a valid template) accepts."""
    parts = []
    for segment in value.split("/"):
        if segment == SINGLE:
            parts.append(_SEGMENT_RE)
        elif segment == MULTI:
            parts.append(_GLOB_RE)
        else:
            parts.append(re.escape(segment))
    return re.compile("/".join(parts))
