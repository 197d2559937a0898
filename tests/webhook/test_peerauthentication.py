from __future__ import annotations

from tests.webhook.support import check, errors


def test_port_level_needs_labels_and_valid_ports() -> None:
    found = check(
        "PeerAuthentication",
        {"selector": {"matchLabels": {}}, "portLevelMtls": {"abc": {"mode": "STRICT"}}},
    )
    assert {"spec.portLevelMtls", "spec.portLevelMtls[abc]"} <= set(errors(found))


def test_empty_port_level_map_is_an_error() -> None:
    found = check(
        "PeerAuthentication", {"selector": {"matchLabels": {"a": "b"}}, "portLevelMtls": {}}
    )
    assert "spec.portLevelMtls" in errors(found)


def test_per_port_mode_is_checked() -> None:
    found = check(
        "PeerAuthentication",
        {"selector": {"matchLabels": {"a": "b"}}, "portLevelMtls": {"8080": {"mode": "ON"}}},
    )
    assert "spec.portLevelMtls[8080].mode" in errors(found)


def test_v1beta1_is_judged_the_same() -> None:
    found = check("PeerAuthentication", {"mtls": {"mode": "ENABLED"}}, version="v1beta1")
    assert "spec.mtls.mode" in errors(found)
