"""The rate-limit workload: 1,000 distinct users, two descriptors per request, never over limit.

Every request carries ``x-user: u<n>`` and ``x-tenant: t<n % 100>``; Envoy's route turns them
into two descriptors, ``[(user, u<n>)]`` and ``[(tenant, t<m>)]``, each with its own limit. The
limits are far above what a run can reach, so every decision counts in the store and answers
OK: an OVER_LIMIT would be cheaper and make the service look faster than it is.
"""

from __future__ import annotations

import struct

from envoy.service.ratelimit.v3 import rls_pb2

DOMAIN = "bench"
USERS = 1000
TENANTS = 100
GRPC_PATH = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"

CONFIG_YAML = f"""\
domain: {DOMAIN}
descriptors:
  - key: user
    rate_limit: {{unit: hour, requests_per_unit: 1000000000}}
  - key: tenant
    rate_limit: {{unit: hour, requests_per_unit: 1000000000}}
"""

# Envoy's route: one descriptor per rate_limits entry.
ROUTE_RATE_LIMITS = [
    {"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]},
    {"actions": [{"request_headers": {"header_name": "x-tenant", "descriptor_key": "tenant"}}]},
]

# wrk: a random user (and its tenant) per request.
WRK_SCRIPT = f"""\
math.randomseed(os.time())
request = function()
  local n = math.random(0, {USERS - 1})
  wrk.headers["x-user"] = "u" .. n
  wrk.headers["x-tenant"] = "t" .. (n % {TENANTS})
  return wrk.format(nil)
end
"""


def headers(n: int) -> dict[str, str]:
    return {"x-user": f"u{n}", "x-tenant": f"t{n % TENANTS}"}


def header_sets() -> list[dict[str, str]]:
    """The fixed-rate client's requests, in a shuffled but reproducible order."""
    order = [(i * 379) % USERS for i in range(USERS)]  # 379 is prime to 1,000: a permutation
    return [headers(n) for n in order]


def request(n: int) -> rls_pb2.RateLimitRequest:
    message = rls_pb2.RateLimitRequest(domain=DOMAIN)
    for key, value in (("user", f"u{n}"), ("tenant", f"t{n % TENANTS}")):
        message.descriptors.add().entries.add(key=key, value=value)
    return message


def grpc_body(n: int) -> bytes:
    """One gRPC message frame (uncompressed flag, big-endian length, protobuf) for h2load."""
    payload: bytes = request(n).SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload
