"""The init container's inbound capture rules: TCP arriving at the pod goes to Envoy first.

Only traffic entering from outside the pod is captured (nat PREROUTING). Envoy's own
connections to the app start inside the pod and take nat OUTPUT, which has no rule here, so they
are never captured again (no loop); the explicit ``--uid-owner`` RETURN makes that hold even if
an OUTPUT capture is added later. The sidecar's own ports are always excluded so the kubelet's
probes and Prometheus reach them directly.
"""

from __future__ import annotations

import dataclasses
import shlex

INBOUND_CHAIN = "MESHGUARD_INBOUND"
REDIRECT_CHAIN = "MESHGUARD_IN_REDIRECT"
OUTPUT_CHAIN = "MESHGUARD_OUTPUT"


@dataclasses.dataclass(frozen=True, slots=True)
class InboundCapture:
    redirect_port: int
    proxy_uid: int
    include_ports: tuple[int, ...] | None  # None: every port
    exclude_ports: tuple[int, ...]  # sidecar ports + the pod's exclusions


def commands(capture: InboundCapture, iptables: str = "iptables") -> list[list[str]]:
    nat = [iptables, "-t", "nat"]
    rules = [
        [*nat, "-N", REDIRECT_CHAIN],
        [
            *nat,
            "-A",
            REDIRECT_CHAIN,
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-ports",
            str(capture.redirect_port),
        ],
        [*nat, "-N", INBOUND_CHAIN],
        [*nat, "-A", "PREROUTING", "-p", "tcp", "-j", INBOUND_CHAIN],
        [*nat, "-N", OUTPUT_CHAIN],
        [*nat, "-A", "OUTPUT", "-p", "tcp", "-j", OUTPUT_CHAIN],
        [
            *nat,
            "-A",
            OUTPUT_CHAIN,
            "-m",
            "owner",
            "--uid-owner",
            str(capture.proxy_uid),
            "-j",
            "RETURN",
        ],
    ]
    if capture.include_ports is None:
        for port in sorted(set(capture.exclude_ports)):
            rules.append(
                [*nat, "-A", INBOUND_CHAIN, "-p", "tcp", "--dport", str(port), "-j", "RETURN"]
            )
        rules.append([*nat, "-A", INBOUND_CHAIN, "-p", "tcp", "-j", REDIRECT_CHAIN])
    else:
        for port in sorted(set(capture.include_ports) - set(capture.exclude_ports)):
            rules.append(
                [*nat, "-A", INBOUND_CHAIN, "-p", "tcp", "--dport", str(port), "-j", REDIRECT_CHAIN]
            )
    return rules


def script(capture: InboundCapture) -> str:
    """A POSIX shell script running every rule, stopping at the first failure."""
    lines = ["set -eu"] + [shlex.join(rule) for rule in commands(capture)]
    return "\n".join(lines) + "\n"
