"""The init container's capture rules (run for real in tests/integration/test_mesh_netns.py)."""

from __future__ import annotations

from meshguard.webhook.injection.iptables import Capture, commands, script


def _rules(capture: Capture) -> list[str]:
    return [" ".join(rule[3:]) for rule in commands(capture)]


def test_all_ports_with_exclusions() -> None:
    rules = _rules(Capture(15006, 15001, 1337, None, (15020, 22, 15020)))
    assert "-A MESHGUARD_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006" in rules
    assert "-A PREROUTING -p tcp -j MESHGUARD_INBOUND" in rules
    excluded = [r for r in rules if r.endswith("-j RETURN") and "--dport" in r]
    assert excluded == [
        "-A MESHGUARD_INBOUND -p tcp --dport 22 -j RETURN",
        "-A MESHGUARD_INBOUND -p tcp --dport 15020 -j RETURN",
    ]
    inbound = [r for r in rules if r.startswith("-A MESHGUARD_INBOUND")]
    assert inbound[-1] == "-A MESHGUARD_INBOUND -p tcp -j MESHGUARD_IN_REDIRECT"


def test_outbound_capture_in_istio_order() -> None:
    capture = Capture(15006, 15001, 1337, None, (), (5432, 53), ("10.96.0.0/12",))
    rules = _rules(capture)
    assert "-A OUTPUT -p tcp -j MESHGUARD_OUTPUT" in rules
    assert "-A MESHGUARD_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in rules
    output = [r for r in rules if r.startswith("-A MESHGUARD_OUTPUT")]
    assert output == [
        "-A MESHGUARD_OUTPUT -m owner --uid-owner 1337 -j RETURN",  # Envoy itself: no loop
        "-A MESHGUARD_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-A MESHGUARD_OUTPUT -p tcp --dport 53 -j RETURN",
        "-A MESHGUARD_OUTPUT -p tcp --dport 5432 -j RETURN",
        "-A MESHGUARD_OUTPUT -d 10.96.0.0/12 -j RETURN",
        "-A MESHGUARD_OUTPUT -j MESHGUARD_REDIRECT",  # the rest goes to the outbound port
    ]


def test_included_ports_only() -> None:
    rules = _rules(Capture(15006, 15001, 1337, (8080, 9090, 22), (22,)))
    captured = [r for r in rules if r.startswith("-A MESHGUARD_INBOUND")]
    assert captured == [
        "-A MESHGUARD_INBOUND -p tcp --dport 8080 -j MESHGUARD_IN_REDIRECT",
        "-A MESHGUARD_INBOUND -p tcp --dport 9090 -j MESHGUARD_IN_REDIRECT",
    ]


def test_script_stops_on_the_first_error() -> None:
    text = script(Capture(15006, 15001, 1337, None, ()))
    assert text.startswith("set -eu\n")
    assert "iptables -t nat -N MESHGUARD_INBOUND" in text


def test_included_outbound_ranges_only() -> None:
    capture = Capture(15006, 15001, 1337, None, (), (53,), ("10.96.0.1/32",), ("10.0.0.0/8",))
    output = [r for r in _rules(capture) if r.startswith("-A MESHGUARD_OUTPUT")]
    assert output == [
        "-A MESHGUARD_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A MESHGUARD_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-A MESHGUARD_OUTPUT -p tcp --dport 53 -j RETURN",
        "-A MESHGUARD_OUTPUT -d 10.96.0.1/32 -j RETURN",  # exclusions still win
        "-A MESHGUARD_OUTPUT -d 10.0.0.0/8 -j MESHGUARD_REDIRECT",  # no catch-all after it
    ]


def test_empty_outbound_ranges_capture_nothing_outbound() -> None:
    rules = _rules(Capture(15006, 15001, 1337, None, (), include_outbound_cidrs=()))
    assert not [r for r in rules if r.startswith("-A MESHGUARD_OUTPUT -") and "REDIRECT" in r]
    assert "-A MESHGUARD_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006" in rules
