"""Workload identity end to end on loopback, every piece real.

The mesh CA signs SVIDs for two agents (``default/frontend`` and ``default/other``, tokens from a
test service-account issuer); a client-side Envoy per identity originates mTLS with its SVID to
a server-side Envoy running the bootstrap that injection GENERATED for the pod (extracted from
the patched pod), which calls meshguard authz (ext_authz) and meshguard ratelimit. Only
``cluster.local/ns/default/sa/frontend`` is allowed by the AuthorizationPolicy.

Loopback has no iptables, so the pod asks for interception NONE: peers dial the sidecar port.
tests/integration/test_mesh_netns.py covers the redirect rules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from cryptography import x509

from meshguard.authz.runtime import build_runtime
from meshguard.common import envoy as cfg
from meshguard.common.sources import SourceFile
from meshguard.ratelimit import grpc_api
from meshguard.ratelimit.config import compile_sources
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.service import RateLimitService
from meshguard.webhook.agent.agent import Agent, AgentConfig
from meshguard.webhook.agent.caclient import CaRefused, fetch_svid
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.inject import inject
from tests.authz.test_grpc_api import settings as authz_settings
from tests.harness.envoy import EnvoyFactory
from tests.harness.meshca import RunningCa, start_ca
from tests.harness.meshpolicy import FRONTEND, FRONTEND_ONLY_POLICY
from tests.harness.satokens import ServiceAccountIssuer

TOKENS = ServiceAccountIssuer.create()
SERVER_ID = "spiffe://cluster.local/ns/default/sa/web"
LIMITS = """
domain: mesh
descriptors:
  - key: namespace
    value: default
    descriptors:
      - key: workload
        value: web
        rate_limit: {unit: minute, requests_per_unit: 100000}
"""
_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
CERT_TTL = 10  # seconds: several rotations during one test

pytestmark = pytest.mark.timeout(120)


def _sds(directory: Path, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "sds_config": {
            "resource_api_version": "V3",
            "path_config_source": {
                "path": str(directory / f"{name}.yaml"),
                "watched_directory": {"path": str(directory)},
            },
        },
    }


def client_bootstrap(sds_dir: Path, server_port: int) -> dict[str, Any]:
    """A client-side sidecar: plain HTTP in, mTLS with its SVID out, server identity checked."""
    cluster = cfg.static_cluster("server", server_port)
    cluster["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": cfg.typed(
            _TLS,
            common_tls_context={
                "tls_certificate_sds_secret_configs": [_sds(sds_dir, "default")],
                "combined_validation_context": {
                    "default_validation_context": {
                        "match_typed_subject_alt_names": [
                            {"san_type": "URI", "matcher": {"exact": SERVER_ID}}
                        ]
                    },
                    "validation_context_sds_secret_config": _sds(sds_dir, "ROOTCA"),
                },
            },
        ),
    }
    listener = cfg.http_listener("out", routes=[cfg.cluster_route("server")])
    return cfg.bootstrap(listeners=[listener], clusters=[cluster], node_id="client")


@dataclasses.dataclass
class Mesh:
    ca: RunningCa
    server: Any
    server_agent: Agent
    clients: dict[str, Any]
    inbound_port: int
    app_port: int
    config: InjectionConfig
    agents: dict[str, Agent]

    async def get(self, session: aiohttp.ClientSession, who: str, path: str = "/") -> int:
        port = self.clients[who].listener_port("out")
        async with session.get(f"http://127.0.0.1:{port}{path}") as response:
            return response.status


@pytest.fixture
async def app_port() -> AsyncIterator[int]:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"headers": dict(request.headers)})

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "policy.yaml").write_text(FRONTEND_ONLY_POLICY)
    authz = build_runtime(authz_settings(policies))
    rls = RateLimitService(
        lambda: compile_sources([SourceFile("mesh.yaml", LIMITS)]), MemoryStore()
    )
    rls_server = grpc.aio.server()
    grpc_api.register(rls)(rls_server)
    rls_port = rls_server.add_insecure_port("127.0.0.1:0")
    await authz.start()
    await rls_server.start()
    yield authz.grpc_ports[0], rls_port
    await rls_server.stop(None)
    await authz.stop()


async def _agent(ca: RunningCa, directory: Path, account: str) -> Agent:
    token = directory / f"{account}.token"
    token.write_text(TOKENS.token("default", account))
    agent = Agent(AgentConfig(ca.endpoint(), token, directory / account, ttl_seconds=CERT_TTL))
    return agent


def generated_bootstrap(
    config: InjectionConfig, app_port: int, mode: str, account: str = "web"
) -> dict[str, Any]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{account}-1",
            "labels": {"app": account},
            "annotations": {
                "sidecar.meshguard.io/interceptionMode": "NONE",
                "sidecar.meshguard.io/mtlsMode": mode,
            },
        },
        "spec": {
            "serviceAccountName": account,
            "containers": [{"name": account, "image": "w", "ports": [{"containerPort": app_port}]}],
        },
    }
    proxy = next(
        c
        for c in inject(pod, "default", config).pod["spec"]["containers"]
        if c["name"] == "meshguard-proxy"
    )
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    return json.loads(env["MESHGUARD_ENVOY_BOOTSTRAP"])  # type: ignore[no-any-return]


async def start_mesh(
    mode: str,
    tmp_path: Path,
    envoy: EnvoyFactory,
    free_port: Callable[[], int],
    app_port: int,
    services: tuple[int, int],
    tasks: list[asyncio.Task[None]],
) -> Mesh:
    ca = await start_ca(tmp_path / "ca", TOKENS, max_ttl=datetime.timedelta(hours=1))
    agents = {name: await _agent(ca, tmp_path, name) for name in ("web", "frontend", "other")}
    for agent in agents.values():
        tasks.append(asyncio.create_task(agent.run()))
    for agent in agents.values():
        await asyncio.wait_for(agent.first_svid.wait(), 15)
    authz_port, rls_port = services
    config = InjectionConfig(
        authz_address=f"127.0.0.1:{authz_port}",
        ratelimit_address=f"127.0.0.1:{rls_port}",
        inbound_port=free_port(),
        outbound_port=free_port(),
        admin_port=free_port(),
        prometheus_port=free_port(),
        sds_dir=str(agents["web"].config.output_dir),
        ratelimit_fail_open=False,
    )
    server = await envoy(generated_bootstrap(config, app_port, mode))
    clients = {
        name: await envoy(client_bootstrap(agents[name].config.output_dir, config.inbound_port))
        for name in ("frontend", "other")
    }
    return Mesh(ca, server, agents["web"], clients, config.inbound_port, app_port, config, agents)


@pytest.fixture
async def mesh_factory(
    tmp_path: Path,
    envoy: EnvoyFactory,
    free_port: Callable[[], int],
    app_port: int,
    services: tuple[int, int],
) -> AsyncIterator[Callable[[str], Any]]:
    tasks: list[asyncio.Task[None]] = []
    started: list[Mesh] = []

    async def make(mode: str) -> Mesh:
        mesh = await start_mesh(mode, tmp_path, envoy, free_port, app_port, services, tasks)
        started.append(mesh)
        return mesh

    yield make
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for mesh in started:
        await mesh.ca.stop()


def _served_serial(server: Any) -> int:
    certs = json.loads(server.admin_get("/certs"))["certificates"]
    chains = [c for c in certs if c.get("cert_chain")]
    return int(chains[0]["cert_chain"][0]["serial_number"], 16)


def _file_serial(agent: Agent) -> int:
    pem = (agent.config.output_dir / "cert-chain.pem").read_bytes()
    return x509.load_pem_x509_certificates(pem)[0].serial_number


async def test_strict_identity_rotation_and_refusals(mesh_factory: Callable[[str], Any]) -> None:
    mesh: Mesh = await mesh_factory("STRICT")
    async with aiohttp.ClientSession() as session:
        assert await mesh.get(session, "frontend") == 200
        assert await mesh.get(session, "other") == 403
        # Plain text has no filter chain under STRICT: the connection is closed.
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"http://127.0.0.1:{mesh.inbound_port}/") as response:
                await response.read()
        # Traffic keeps flowing while certificates rotate under it.
        first_serial = _served_serial(mesh.server)
        renewals = mesh.server_agent.renewals
        statuses = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CERT_TTL * 1.6
        while loop.time() < deadline:
            statuses.append(await mesh.get(session, "frontend"))
            await asyncio.sleep(0.05)
    assert mesh.server_agent.renewals >= renewals + 2
    assert set(statuses) == {200}, f"{len(statuses)} requests: {sorted(set(statuses))}"
    for _ in range(40):  # Envoy picks up the latest files within a couple of seconds
        if _served_serial(mesh.server) == _file_serial(mesh.server_agent):
            break
        await asyncio.sleep(0.1)
    assert _served_serial(mesh.server) == _file_serial(mesh.server_agent) != first_serial
    stats = mesh.server.stats()
    # Envoy counts rate-limit calls on the route's upstream cluster.
    assert stats.get(f"cluster.inbound|{mesh.app_port}.ratelimit.ok", 0) >= len(statuses)
    assert stats.get(f"http.inbound_{mesh.app_port}.ext_authz.denied", 0) >= 1
    # The CA refuses tokens for another audience and expired ones.
    for token in (
        TOKENS.token("default", "frontend", audience="istio-ca"),
        TOKENS.token("default", "frontend", lifetime=-300),
    ):
        with pytest.raises(CaRefused, match="UNAUTHENTICATED"):
            await fetch_svid(mesh.ca.endpoint(), token, 60)


async def test_permissive_plain_text_reaches_authz_without_principal(
    mesh_factory: Callable[[str], Any],
) -> None:
    mesh: Mesh = await mesh_factory("PERMISSIVE")
    async with aiohttp.ClientSession() as session:
        assert await mesh.get(session, "frontend") == 200
        async with session.get(f"http://127.0.0.1:{mesh.inbound_port}/") as response:
            assert response.status == 403
        assert await mesh.get(session, "other") == 403


async def test_generated_outbound_listener_names_the_destination_by_header(
    mesh_factory: Callable[[str], Any], envoy: EnvoyFactory, free_port: Callable[[], int]
) -> None:
    """Without interception the caller names the destination; the app never sees that header."""
    mesh: Mesh = await mesh_factory("STRICT")
    config = dataclasses.replace(
        mesh.config,
        inbound_port=free_port(),
        outbound_port=free_port(),
        admin_port=free_port(),
        prometheus_port=free_port(),
        sds_dir=str(mesh.agents["frontend"].config.output_dir),
    )
    frontend = await envoy(generated_bootstrap(config, free_port(), "STRICT", "frontend"))
    destination = {"x-envoy-original-dst-host": f"127.0.0.1:{mesh.inbound_port}"}
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{config.outbound_port}/hello"
        async with session.get(url, headers=destination) as response:
            assert response.status == 200, await response.text()
            seen = {k.lower(): v for k, v in (await response.json())["headers"].items()}
    assert f"URI={FRONTEND}" in seen["x-forwarded-client-cert"]
    assert "x-envoy-original-dst-host" not in seen
    assert frontend.stats()["cluster.outbound|original-dst.upstream_rq_200"] == 1
