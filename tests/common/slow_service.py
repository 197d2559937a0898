"""A real meshguard ServiceRuntime with one slow gRPC method, run as a child process by tests.

Prints one JSON line with its bound ports once serving, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import sys

import grpc

from meshguard.common.server import ServiceRuntime

SERVICE = "meshguard.test.Slow"


async def wait(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await asyncio.sleep(float(request.decode() or "0"))
    return b"done:" + request


def register(server: grpc.aio.Server) -> None:
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Wait": grpc.unary_unary_rpc_method_handler(wait)}
    )
    server.add_generic_rpc_handlers((handler,))


async def main() -> None:
    runtime = ServiceRuntime("slow", admin_port=0, host="127.0.0.1", grace_period=5.0)
    runtime.add_grpc(0, register, [SERVICE])
    serving = asyncio.create_task(runtime.run())
    while not runtime.ready:
        await asyncio.sleep(0.01)
    print(json.dumps({"grpc": runtime.grpc_ports[0], "admin": runtime.admin_port}), flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
