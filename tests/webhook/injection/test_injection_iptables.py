"""The init container's capture rules (run for real in tests/integration/test_mesh_netns.py)."""

from __future__ import annotations

from meshguard.webhook.injection.iptables import InboundCapture, commands, script


def _rules(capture: InboundCapture) -> list[str]:
    return [" ".join(rule[3:]) for rule in commands(capture)]


def test_all_ports_with_exclusions() -> None:
    rules = _rules(InboundCapture(15006, 1337, None, (15020, 22, 15020)))
    assert "-A MESHGUARD_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006" in rules
    assert "-A PREROUTING -p tcp -j MESHGUARD_INBOUND" in rules
    excluded = [r for r in rules if r.endswith("-j RETURN") and "--dport" in r]
    assert excluded == [
        "-A MESHGUARD_INBOUND -p tcp --dport 22 -j RETURN",
        "-A MESHGUARD_INBOUND -p tcp --dport 15020 -j RETURN",
    ]
    assert rules[-1] == "-A MESHGUARD_INBOUND -p tcp -j MESHGUARD_IN_REDIRECT"
    assert "-A MESHGUARD_OUTPUT -m owner --uid-owner 1337 -j RETURN" in rules


def test_included_ports_only() -> None:
    rules = _rules(InboundCapture(15006, 1337, (8080, 9090, 22), (22,)))
    captured = [r for r in rules if r.startswith("-A MESHGUARD_INBOUND")]
    assert captured == [
        "-A MESHGUARD_INBOUND -p tcp --dport 8080 -j MESHGUARD_IN_REDIRECT",
        "-A MESHGUARD_INBOUND -p tcp --dport 9090 -j MESHGUARD_IN_REDIRECT",
    ]


def test_script_stops_on_the_first_error() -> None:
    text = script(InboundCapture(15006, 1337, None, ()))
    assert text.startswith("set -eu\n")
    assert "iptables -t nat -N MESHGUARD_INBOUND" in text
