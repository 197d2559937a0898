"""``meshguard agent`` (the sidecar's identity agent) and ``meshguard agent wait``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable
from pathlib import Path

from aiohttp import web

from meshguard.common import logs
from meshguard.common.settings import add_flag
from meshguard.webhook.agent.agent import Agent, AgentConfig
from meshguard.webhook.agent.caclient import CaEndpoint
from meshguard.webhook.agent.envoyrun import run_envoy
from meshguard.webhook.agent.health import health_app
from meshguard.webhook.agent.probes import parse_probers

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = sub.add_parser(
        "agent",
        help="sidecar identity agent: key + CSR -> SPIFFE certificate files for Envoy SDS",
        description="Generates an EC P-256 key in memory, trades a CSR and the projected "
        "ServiceAccount token for an X.509-SVID at the mesh CA, writes it as file-based SDS "
        "resources, renews at half the lifetime (with jitter) and serves health.",
    )
    add_flag(agent, "--ca-address", default="meshguard-ca.meshguard-system.svc:15012", help="CA")
    add_flag(agent, "--ca-server-name", help="TLS name of the CA when --ca-address is an IP")
    add_flag(
        agent,
        "--root-bundle",
        type=Path,
        default=Path("/var/run/secrets/meshguard/root-cert.pem"),
        help="mesh root bundle used to verify the CA",
    )
    add_flag(
        agent,
        "--token-file",
        type=Path,
        default=Path("/var/run/secrets/tokens/meshguard-token"),
        help="projected ServiceAccount token (audience meshguard-ca)",
    )
    add_flag(
        agent,
        "--output-dir",
        type=Path,
        default=Path("/etc/meshguard/sds"),
        help="directory Envoy watches for SDS files",
    )
    add_flag(agent, "--ttl", type=int, default=0, help="requested TTL, seconds (0: CA default)")
    add_flag(agent, "--renew-jitter", type=float, default=0.05, help="± fraction of lifetime")
    add_flag(agent, "--status-port", type=int, default=15020, help="health and app probes port")
    add_flag(agent, "--status-host", default="0.0.0.0", help="address of the status port")
    add_flag(agent, "--envoy-bootstrap", default="", help="Envoy bootstrap JSON: run Envoy")
    add_flag(agent, "--envoy-binary", default="envoy", help="Envoy executable")
    add_flag(agent, "--envoy-admin-port", type=int, default=15000, help="Envoy admin port")
    add_flag(agent, "--envoy-concurrency", type=int, default=2, help="Envoy worker threads")
    add_flag(agent, "--app-probers", default="", help="JSON of the app probes moved here")
    agent.add_argument("--log-level", default="info")
    agent.set_defaults(handler=_run)
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="COMMAND")
    wait = agent_sub.add_parser(
        "wait", help="block until the sidecar is ready (postStart hook of held applications)"
    )
    wait.add_argument("--url", default="http://127.0.0.1:15020/healthz/ready")
    wait.add_argument("--timeout", type=float, default=120.0)
    wait.set_defaults(handler=_wait)


def _run(args: argparse.Namespace) -> int:
    logs.configure(args.log_level)
    config = AgentConfig(
        CaEndpoint(args.ca_address, args.root_bundle, args.ca_server_name),
        args.token_file,
        args.output_dir,
        ttl_seconds=args.ttl,
        renew_jitter=args.renew_jitter,
    )
    return asyncio.run(_serve(args, Agent(config)))


async def _serve(args: argparse.Namespace, agent: Agent) -> int:
    envoy_port = args.envoy_admin_port if args.envoy_bootstrap else None
    app = health_app(agent, envoy_admin_port=envoy_port, probes=parse_probers(args.app_probers))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.status_host, args.status_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[object]] = [
        asyncio.create_task(_as_object(agent.run())),
        asyncio.create_task(_as_object(stop.wait())),
    ]
    if args.envoy_bootstrap:
        await agent.first_svid.wait()
        tasks.append(
            asyncio.create_task(
                _as_object(
                    run_envoy(
                        args.envoy_binary,
                        args.envoy_bootstrap,
                        args.output_dir,
                        args.envoy_concurrency,
                    )
                )
            )
        )
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for task in tasks:
        result = task.result() if task in done and not task.cancelled() else None
        if isinstance(result, int) and not isinstance(result, bool):
            code = result  # Envoy exited: surface its code
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await runner.cleanup()
    return code


async def _as_object(awaitable: Awaitable[object]) -> object:
    return await awaitable


def _wait(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(args.url, timeout=1) as response,
        ):
            if response.status == 200:
                return 0
        time.sleep(0.25)
    print(f"sidecar not ready after {args.timeout}s ({args.url})", file=sys.stderr)
    return 1
