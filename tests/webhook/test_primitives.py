from __future__ import annotations

from fractions import Fraction

import pytest

from meshguard.webhook import primitives
from meshguard.webhook.fields import Node, Report


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1h30m", 5_400_000_000_000),
        ("1.5s", 1_500_000_000),
        ("300ms", 300_000_000),
        ("0", 0),
        ("2us", 2_000),
        ("-1s", -1_000_000_000),
    ],
)
def test_parse_duration(text: str, nanos: int) -> None:
    assert primitives.parse_duration(text) == Fraction(nanos)


@pytest.mark.parametrize("text", ["", "5", "1x", "s", "1.2.3s", "1 s"])
def test_parse_duration_rejects(text: str) -> None:
    assert primitives.parse_duration(text) is None


def test_duration_rules() -> None:
    assert primitives.duration_error("1ms") is None
    assert "at least 1ms" in (primitives.duration_error("0s") or "")
    assert "at least 1ms" in (primitives.duration_error("500us") or "")
    assert "whole number of milliseconds" in (primitives.duration_error("1500us") or "")
    assert primitives.duration_error("0s", allow_zero=True) is None
    assert primitives.duration_error("1500ms", whole=primitives.NANOS_PER_S) is not None


def test_ports_and_protocols() -> None:
    assert primitives.port_error(0) is not None
    assert primitives.port_error(0, allow_zero=True) is None
    assert primitives.port_error(65536) is not None
    assert primitives.port_name_error("http_web") is not None
    assert primitives.port_name_error("http-web") is None
    assert primitives.protocol_error("grpc-web") is None
    assert primitives.protocol_error("FTP") is not None


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("app", True),
        ("app.kubernetes.io/name", True),
        ("Bad_Prefix/x", False),
        ("-x", False),
        ("/x", False),
        ("a" * 64, False),
    ],
)
def test_label_keys(key: str, ok: bool) -> None:
    assert (primitives.label_key_error(key) is None) is ok


@pytest.mark.parametrize(("value", "ok"), [("", True), ("v1.0_b-c", True), ("v1 beta", False)])
def test_label_values(value: str, ok: bool) -> None:
    assert (primitives.label_value_error(value) is None) is ok


def _run(check: object, data: dict[str, object], *args: object) -> Report:
    report = Report()
    check(Node(data, "spec", report), *args)  # type: ignore[operator]
    return report


def test_percent() -> None:
    assert not _run(primitives.check_percent, {"p": {"value": 0}}, "p").findings
    assert not _run(primitives.check_percent, {"p": {"value": 0.0001}}, "p").findings
    assert _run(primitives.check_percent, {"p": {"value": 0.00001}}, "p").findings
    assert _run(primitives.check_percent, {"p": {"value": 100.5}}, "p").findings


def test_selector_rules() -> None:
    empty = _run(primitives.check_selector, {"selector": {}}, "selector", "matchLabels")
    assert [f.is_error for f in empty.findings] == [False]
    star = _run(primitives.check_selector, {"s": {"matchLabels": {"app": "*"}}}, "s", "matchLabels")
    assert star.findings[0].path == "spec.s.matchLabels[app]" and star.findings[0].is_error


def test_export_to() -> None:
    def problems(entries: list[str], allow_none: bool = False) -> list[str]:
        report = Report()
        primitives.check_export_to(
            Node({"exportTo": entries}, "spec", report), "shop", allow_none=allow_none
        )
        return [f.message for f in report.findings]

    assert problems([".", "other"]) == []
    assert problems(["~"], allow_none=True) == []
    assert problems(["~"])
    assert problems(["~", "."], allow_none=True)
    assert problems([".", "shop"])  # the own namespace duplicates "."
    assert problems(["*", "x"])
    assert problems(["Bad_NS"])


def test_target_refs() -> None:
    report = _run(
        primitives.check_policy_target,
        {"targetRef": {"kind": "Deployment", "name": "x", "namespace": "other"}},
    )
    paths = sorted(f.path for f in report.findings)
    assert paths == ["spec.targetRef.kind", "spec.targetRef.namespace"]
    both = _run(
        primitives.check_policy_target,
        {"selector": {"matchLabels": {"a": "b"}}, "targetRefs": [{"kind": "Service", "name": "s"}]},
    )
    assert [f.path for f in both.findings] == ["spec.targetRefs"]


def test_regex_uses_re2() -> None:
    assert primitives.regex_error("^/api/v[0-9]+/.*") is None
    assert "invalid RE2" in (primitives.regex_error("^/api/(?!internal).*") or "")
    assert "invalid RE2" in (primitives.regex_error(r"(a)\1") or "")
    assert primitives.regex_error("a" * 1025) is not None
    assert primitives.regex_error("") is not None


def test_is_prime() -> None:
    assert [n for n in range(20) if primitives.is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]
