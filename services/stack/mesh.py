"""The mesh half of ``meshguard up``: the CA, and two sidecars built as injection builds them.

The demo upstream is pod ``demo/web`` (service account ``web``); a second pod ``demo/frontend``
calls it. Each gets the sidecar container that ``meshguard inject`` renders (the agent, the
generated Envoy bootstrap) run as a local process: the agent makes its key, trades a CSR and
its service-account token for a SPIFFE certificate at ``meshguard ca serve`` (development root,
tokens from :mod:`.satokens`), then starts Envoy. web's sidecar terminates mutual TLS in
STRICT mode and calls authz and ratelimit; frontend's outbound listener originates mTLS with its
own certificate, so authz sees ``cluster.local/ns/demo/sa/frontend`` as ``source.principal``.
Loopback has no iptables: both pods use interception NONE and a caller names the destination
in ``x-envoy-original-dst-host`` (in a pod the init container's rules do that).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from meshguard.common.envoy import envoy_binary
from meshguard.common.netutil import LOCALHOST, free_port
from meshguard.stack.children import ChildService
from meshguard.stack.satokens import ISSUER, DevServiceAccounts
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.decision import PROXY_CONTAINER
from meshguard.webhook.injection.inject import inject

NAMESPACE = "demo"
TRUST_DOMAIN = "cluster.local"
FRONTEND = f"{TRUST_DOMAIN}/ns/{NAMESPACE}/sa/frontend"


@dataclasses.dataclass(frozen=True, slots=True)
class Mesh:
    ca: ChildService
    sidecars: tuple[ChildService, ...]
    web_inbound_port: int
    frontend_outbound_port: int


def plan(
    workdir: Path, upstream_port: int, authz_port: int, ratelimit_port: int, log_level: str
) -> Mesh:
    """The CA and the two sidecars, not started yet (start the CA first)."""
    accounts = DevServiceAccounts()
    ca_port, ca_admin = free_port(), free_port()
    jwks = accounts.write_jwks(workdir / "jwks.json")
    ca_args = (
        f"ca serve --host {LOCALHOST} --grpc-port {ca_port} --admin-port {ca_admin} "
        f"--trust-domain {TRUST_DOMAIN} --token-verifier issuer-keys --token-issuer {ISSUER} "
        f"--log-level {log_level}"
    ).split()
    ca = ChildService(
        "ca",
        [*ca_args, "--generated-root-dir", str(workdir / "ca"), "--issuer-keys", str(jwks)],
        ca_admin,
    )
    web = _sidecar_config(workdir / "web", ca_port, authz_port, ratelimit_port)
    frontend = _sidecar_config(workdir / "frontend", ca_port, authz_port, ratelimit_port)
    sidecars = tuple(
        _sidecar(name, config, accounts, workdir, ports, log_level)
        for name, config, ports in (("web", web, [upstream_port]), ("frontend", frontend, []))
    )
    return Mesh(ca, sidecars, web.inbound_port, frontend.outbound_port)


def _sidecar_config(
    sds_dir: Path, ca_port: int, authz_port: int, ratelimit_port: int
) -> InjectionConfig:
    return InjectionConfig(
        trust_domain=TRUST_DOMAIN,
        ca_address=f"{LOCALHOST}:{ca_port}",
        authz_address=f"{LOCALHOST}:{authz_port}",
        ratelimit_address=f"{LOCALHOST}:{ratelimit_port}",
        mtls_mode="STRICT",
        inbound_port=free_port(),
        outbound_port=free_port(),
        status_port=free_port(),
        admin_port=free_port(),
        prometheus_port=free_port(),
        sds_dir=str(sds_dir),
    )


def _sidecar(
    account: str,
    config: InjectionConfig,
    accounts: DevServiceAccounts,
    workdir: Path,
    app_ports: list[int],
    log_level: str,
) -> ChildService:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": account,
            "labels": {"app": account},
            "annotations": {"sidecar.meshguard.io/interceptionMode": "NONE"},
        },
        "spec": {
            "serviceAccountName": account,
            "containers": [
                {
                    "name": account,
                    "image": "demo",
                    "ports": [{"containerPort": p} for p in app_ports],
                }
            ],
        },
    }
    container = next(
        c for c in inject(pod, NAMESPACE, config).pod["spec"]["containers"]
        if c["name"] == PROXY_CONTAINER
    )  # fmt: skip
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    token = accounts.write_token(
        workdir / f"{account}.token", NAMESPACE, account, config.token_audience
    )
    env.update(
        MESHGUARD_ROOT_BUNDLE=str(workdir / "ca" / "ca-cert.pem"),  # the ConfigMap in a pod
        MESHGUARD_TOKEN_FILE=str(token),  # the projected token in a pod
        MESHGUARD_CA_SERVER_NAME="localhost",
        MESHGUARD_STATUS_HOST=LOCALHOST,
        MESHGUARD_ENVOY_BINARY=str(envoy_binary()),
        MESHGUARD_ENVOY_CONCURRENCY="1",
    )
    args = [*container["command"][1:], "--log-level", log_level]  # `meshguard agent ...`
    return ChildService(
        f"{account} sidecar",
        args,
        config.status_port,
        ready_path="/healthz/ready",
        env=env,
    )
