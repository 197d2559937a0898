"""The do-nothing ext_authz gRPC server of variant (e): the ceiling for a Python authorizer.

It never parses the CheckRequest and answers one pre-serialised OK CheckResponse, so what it
costs is grpc.aio plus Envoy's ext_authz hop and nothing else. Run as its own process
(``python -m benchmarks.authz.null_authz PORT``) so its CPU is measured like meshguard's.
"""

from __future__ import annotations

import asyncio
import sys

import grpc
from envoy.service.auth.v3 import external_auth_pb2

SERVICE = "envoy.service.auth.v3.Authorization"
OK: bytes = external_auth_pb2.CheckResponse().SerializeToString()  # no status: code 0, OK


async def _check(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return OK


async def serve(port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(_check)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Check": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
