"""The init container's capture rules: the pod's TCP goes through Envoy, in and out.

Inbound (nat PREROUTING → ``MESHGUARD_INBOUND``): connections arriving from outside the pod are
redirected to Envoy's inbound port, except the sidecar's own ports (the kubelet's probes and
Prometheus reach them directly) and the pod's exclusions.

Outbound (nat OUTPUT → ``MESHGUARD_OUTPUT``), Istio's shape: connections made by the proxy's
uid return first, so Envoy's own connections (to the app on loopback, to the CA, authz and
ratelimit, and the mTLS it originates) are never captured again (no loop); loopback
destinations, excluded ports and excluded CIDRs return too; what is left is redirected to
Envoy's outbound port, which originates mTLS to the original destination: every destination by
default, or with ``include_outbound_cidrs`` only those ranges (Istio's
``includeOutboundIPRanges``; an empty tuple captures nothing outbound).
"""

from __future__ import annotations

import dataclasses
import shlex

INBOUND_CHAIN = "MESHGUARD_INBOUND"
REDIRECT_CHAIN = "MESHGUARD_IN_REDIRECT"
OUTPUT_CHAIN = "MESHGUARD_OUTPUT"
OUT_REDIRECT_CHAIN = "MESHGUARD_REDIRECT"


@dataclasses.dataclass(frozen=True, slots=True)
class Capture:
    inbound_port: int
    outbound_port: int
    proxy_uid: int
    include_ports: tuple[int, ...] | None  # inbound; None: every port
    exclude_ports: tuple[int, ...]  # inbound: sidecar ports + the pod's exclusions
    exclude_outbound_ports: tuple[int, ...] = ()
    exclude_outbound_cidrs: tuple[str, ...] = ()
    include_outbound_cidrs: tuple[str, ...] | None = None  # None: every destination


def commands(capture: Capture, iptables: str = "iptables") -> list[list[str]]:
    return _inbound(capture, [iptables, "-t", "nat"]) + _outbound(capture, [iptables, "-t", "nat"])


def _inbound(capture: Capture, nat: list[str]) -> list[list[str]]:
    to_envoy = ["-j", "REDIRECT", "--to-ports", str(capture.inbound_port)]
    rules = [
        [*nat, "-N", REDIRECT_CHAIN],
        [*nat, "-A", REDIRECT_CHAIN, "-p", "tcp", *to_envoy],
        [*nat, "-N", INBOUND_CHAIN],
        [*nat, "-A", "PREROUTING", "-p", "tcp", "-j", INBOUND_CHAIN],
    ]
    chain = [*nat, "-A", INBOUND_CHAIN, "-p", "tcp"]
    if capture.include_ports is None:
        for port in sorted(set(capture.exclude_ports)):
            rules.append([*chain, "--dport", str(port), "-j", "RETURN"])
        rules.append([*chain, "-j", REDIRECT_CHAIN])
    else:
        for port in sorted(set(capture.include_ports) - set(capture.exclude_ports)):
            rules.append([*chain, "--dport", str(port), "-j", REDIRECT_CHAIN])
    return rules


def _outbound(capture: Capture, nat: list[str]) -> list[list[str]]:
    chain = [*nat, "-A", OUTPUT_CHAIN]
    to_envoy = ["-j", "REDIRECT", "--to-ports", str(capture.outbound_port)]
    rules = [
        [*nat, "-N", OUT_REDIRECT_CHAIN],
        [*nat, "-A", OUT_REDIRECT_CHAIN, "-p", "tcp", *to_envoy],
        [*nat, "-N", OUTPUT_CHAIN],
        [*nat, "-A", "OUTPUT", "-p", "tcp", "-j", OUTPUT_CHAIN],
        [*chain, "-m", "owner", "--uid-owner", str(capture.proxy_uid), "-j", "RETURN"],
        [*chain, "-d", "127.0.0.1/32", "-j", "RETURN"],
    ]
    for port in sorted(set(capture.exclude_outbound_ports)):
        rules.append([*chain, "-p", "tcp", "--dport", str(port), "-j", "RETURN"])
    for cidr in sorted(set(capture.exclude_outbound_cidrs)):
        rules.append([*chain, "-d", cidr, "-j", "RETURN"])
    if capture.include_outbound_cidrs is None:
        rules.append([*chain, "-j", OUT_REDIRECT_CHAIN])
    else:
        for cidr in sorted(set(capture.include_outbound_cidrs)):
            rules.append([*chain, "-d", cidr, "-j", OUT_REDIRECT_CHAIN])
    return rules


def script(capture: Capture) -> str:
    """A POSIX shell script running every rule, stopping at the first failure."""
    lines = ["set -eu"] + [shlex.join(rule) for rule in commands(capture)]
    return "\n".join(lines) + "\n"
