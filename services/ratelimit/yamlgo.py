"""YAML scalars read the way envoyproxy/ratelimit's Go loader (gopkg.in/yaml.v2) reads them.

The reference keeps the literal text of scalars in string fields (``value: 007`` is "007") and
decides validity from the type yaml.v2 resolves a plain scalar to, which differs from PyYAML's
YAML 1.1 rules (``1e3`` and ``08`` are floats in Go, strings in PyYAML). So we compose a node tree
with PyYAML and resolve every plain scalar with yaml.v2's rules; nothing else looks at PyYAML's
own idea of a scalar's type.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
FLOAT = "tag:yaml.org,2002:float"
TIMESTAMP = "tag:yaml.org,2002:timestamp"
MERGE = "tag:yaml.org,2002:merge"
MAP = "tag:yaml.org,2002:map"
SEQ = "tag:yaml.org,2002:seq"

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

_WORDS: dict[str, str] = {}
for _word in [
    "y",
    "Y",
    "yes",
    "Yes",
    "YES",
    "true",
    "True",
    "TRUE",
    "on",
    "On",
    "ON",
    "n",
    "N",
    "no",
    "No",
    "NO",
    "false",
    "False",
    "FALSE",
    "off",
    "Off",
    "OFF",
]:
    _WORDS[_word] = BOOL
for _word in ("~", "null", "Null", "NULL", ""):
    _WORDS[_word] = NULL
for _word in [
    ".nan",
    ".NaN",
    ".NAN",
    ".inf",
    ".Inf",
    ".INF",
    "+.inf",
    "+.Inf",
    "+.INF",
    "-.inf",
    "-.Inf",
    "-.INF",
]:
    _WORDS[_word] = FLOAT
_WORDS["<<"] = MERGE
TRUE_WORDS = frozenset(["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"])

_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(([Tt ])[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]{0,9})?(Z|[-+][0-9]{2}:[0-9]{2})?)?"
)
_DIGITS = {
    "0x": ("0123456789abcdefABCDEF", 16),
    "0X": ("0123456789abcdefABCDEF", 16),
    "0o": ("01234567", 8),
    "0O": ("01234567", 8),
    "0b": ("01", 2),
    "0B": ("01", 2),
}


def parse_go_int(text: str, *, signed: bool = True) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)`` (or ParseUint when not ``signed``), else None."""
    body = text
    negative = False
    if signed and body[:1] in ("+", "-"):
        negative = body[0] == "-"
        body = body[1:]
    if not body:
        return None
    prefix = body[:2]
    if prefix in _DIGITS:
        alphabet, base = _DIGITS[prefix]
        digits = body[2:]
    elif body[0] == "0" and len(body) > 1:
        alphabet, base, digits = "01234567", 8, body[1:]
    else:
        alphabet, base, digits = "0123456789", 10, body
    if not digits or any(c not in alphabet for c in digits):
        return None
    value = int(digits, base)
    if negative:
        value = -value
    if signed:
        return value if INT64_MIN <= value <= INT64_MAX else None
    return value if value <= UINT64_MAX else None


def resolve_plain(text: str) -> str:
    """The tag yaml.v2 gives an untagged plain scalar."""
    hint = text[:1]
    if hint == "" or hint in "yYnNtTfFoO~+-.<0123456789":
        tag = _WORDS.get(text)
        if tag is not None:
            return tag
    if hint == ".":
        if _GO_DOT_FLOAT.fullmatch(text) and math.isfinite(float(text)):
            return FLOAT
        return STR
    if hint != "" and hint in "+-0123456789":
        if hint.isdigit() and _TIMESTAMP.fullmatch(text):
            return TIMESTAMP
        plain = text.replace("_", "")
        if parse_go_int(plain) is not None or parse_go_int(plain, signed=False) is not None:
            return INT
        if _GO_FLOAT.fullmatch(plain) and math.isfinite(float(plain)):
            return FLOAT
    return STR


def int_value(text: str) -> int:
    """The number of a scalar :func:`resolve_plain` called an int."""
    plain = text.replace("_", "")
    value = parse_go_int(plain)
    if value is None:
        value = parse_go_int(plain, signed=False)
    if value is None:
        raise ValueError(f"not an int: {text!r}")
    return value


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class GoLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Composes nodes whose plain scalars carry yaml.v2's tags."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                return resolve_plain(str(value))
            if implicit[1]:
                return STR
        result: str = super().resolve(kind, value, implicit)
        return result


def compose_first(text: str) -> yaml.Node | None:
    """The first document's node tree (yaml.v2 ignores later documents), None when empty."""
    loader = GoLoader(text)
    try:
        if loader.check_node():
            node: yaml.Node = loader.get_node()
            return node
        return None
    finally:
        loader.dispose()


def compose_all(text: str) -> list[yaml.Node]:
    """Every document's node tree (Kubernetes-style multi-document files)."""
    loader = GoLoader(text)
    try:
        nodes: list[yaml.Node] = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    finally:
        loader.dispose()


def go_format(node: yaml.Node) -> str:
    """How Go's ``%v`` prints the value yaml.v2 decoded from ``node`` (for error messages)."""
    if isinstance(node, yaml.ScalarNode):
        text = str(node.value)
        if node.tag == NULL:
            return "<nil>"
        if node.tag == BOOL:
            return "true" if text in TRUE_WORDS else "false"
        if node.tag == INT:
            return str(int_value(text))
        if node.tag == FLOAT:
            return _go_float(text)
        return text
    if isinstance(node, yaml.SequenceNode):
        return "[" + " ".join(go_format(n) for n in node.value) + "]"
    if isinstance(node, yaml.MappingNode):
        pairs = " ".join(f"{go_format(k)}:{go_format(v)}" for k, v in node.value)
        return f"map[{pairs}]"
    return str(node.value)


def _go_float(text: str) -> str:
    lowered = text.lower().lstrip("+")
    if lowered in (".inf", "-.inf", ".nan"):
        return {".inf": "+Inf", "-.inf": "-Inf", ".nan": "NaN"}[lowered]
    value = float(text.replace("_", ""))
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)
