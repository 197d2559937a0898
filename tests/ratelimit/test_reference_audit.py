"""An audit of the service against shared/reference/ratelimit-semantics.md, rule by rule.

Each table row is one rule of the reference (section numbers in the ids): a config, the calls
made with the clock frozen, and what the reference answers (statuses, overall code, headers,
dynamic metadata, counter values under the reference's key layout, stat values). Rejected
configs check the reference's message fragments. Rules about Redis keys and TTLs also run on a
real redis-server (tests/harness/redis.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer

from meshguard.common.findings import FindingsError
from meshguard.common.leangrpc import GrpcError
from meshguard.common.sources import SourceFile
from meshguard.ratelimit import grpc_api, http_api
from meshguard.ratelimit.cli import compiler
from meshguard.ratelimit.config import CompileOptions, RateLimitConfig, compile_sources
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.model import (
    UNLIMITED_REMAINING,
    Code,
    Descriptor,
    LimitOverride,
    Request,
    RequestError,
    Response,
)
from meshguard.ratelimit.redis_store import LeanRedisStore, RedisSettings
from meshguard.ratelimit.service import RateLimitService, ServiceOptions
from meshguard.ratelimit.stats import Stats
from meshguard.ratelimit.store import Increment
from tests.harness.redis import RedisServer

NOW = 1_700_000_000  # 20 s into a minute, 800 s into an hour
MINUTE_START = NOW - NOW % 60
UNITS = {"SECOND": 1, "MINUTE": 2, "HOUR": 3, "DAY": 4, "MONTH": 5, "YEAR": 6, "WEEK": 7}
SECONDS = {
    "SECOND": 1,
    "MINUTE": 60,
    "HOUR": 3600,
    "DAY": 86400,
    "WEEK": 604800,
    "MONTH": 2592000,
    "YEAR": 31536000,
}


# --- request and expectation shorthands ----------------------------------------------------------


def d(
    *entries: tuple[str, str], addend: int | None = None, limit: tuple[int, str] | None = None
) -> Descriptor:
    override = LimitOverride(limit[0], UNITS[limit[1]]) if limit else None
    return Descriptor(tuple(entries), override, addend)


def req(domain: str, *descriptors: Descriptor, hits: int = 0) -> Request:
    return Request(domain, descriptors, hits)


# A status: (code, (requests_per_unit, unit[, name]) or None, limit_remaining, reset or None).
St = tuple[str, tuple[Any, ...] | None, int, int | None]
EMPTY: St = ("OK", None, 0, None)
UNLIMITED: St = ("OK", None, UNLIMITED_REMAINING, None)


def ok(rpu: int, unit: str, remaining: int, name: str = "") -> St:
    return ("OK", (rpu, unit, name) if name else (rpu, unit), remaining, _reset(unit))


def over(rpu: int, unit: str, name: str = "") -> St:
    return ("OVER_LIMIT", (rpu, unit, name) if name else (rpu, unit), 0, _reset(unit))


def _reset(unit: str) -> int:
    return SECONDS[unit] - NOW % SECONDS[unit]


@dataclasses.dataclass(frozen=True)
class Call:
    request: Request
    overall: str = "OK"
    statuses: Sequence[St] = ()
    error: str | None = None
    headers: Sequence[tuple[str, str]] | None = None
    metadata: Mapping[str, Any] | None = None
    counters: Mapping[str, int] = dataclasses.field(default_factory=dict)
    stats: Mapping[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    config: str | Sequence[str]
    calls: Sequence[Call]
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    merge: bool = False


def view(response: Response) -> list[St]:
    out: list[St] = []
    for s in response.statuses:
        limit: tuple[Any, ...] | None = None
        if s.current_limit is not None:
            lim = s.current_limit
            limit = (lim.requests_per_unit, lim.unit.name)
            if lim.name:
                limit = (*limit, lim.name)
        out.append((s.code.name, limit, s.limit_remaining, s.duration_until_reset))
    return out


def compile_texts(texts: str | Sequence[str], merge: bool = False) -> RateLimitConfig:
    texts = [texts] if isinstance(texts, str) else texts
    files = [SourceFile(f"f{i}.yaml", t) for i, t in enumerate(texts)]
    return compile_sources(files, CompileOptions(merge_domains=merge))


class Recording(MemoryStore):
    """The memory store, remembering every (key, addend, ttl) it was asked to apply."""

    def __init__(self) -> None:
        super().__init__(clock=lambda: float(NOW))
        self.ops: list[Increment] = []

    async def increment(self, ops: Sequence[Increment]) -> list[int]:
        self.ops.extend(ops)
        return await super().increment(ops)


def make_service(config: RateLimitConfig | None, store: Any, **options: Any) -> RateLimitService:
    options.setdefault("expiration_jitter_max_seconds", 0)
    return RateLimitService(
        lambda: config, store, ServiceOptions(**options), Stats(), clock=lambda: float(NOW)
    )


async def run_case(case: Case, store: Any) -> None:
    config = compile_texts(case.config, case.merge)
    service = make_service(config, store, **case.options)
    for number, call in enumerate(case.calls):
        where = f"{case.id} call {number}"
        try:
            response = await service.should_rate_limit(call.request)
        except RequestError as exc:
            assert call.error is not None, f"{where}: unexpected error {exc}"
            assert str(exc) == call.error, where
            continue
        assert call.error is None, f"{where}: no error, wanted {call.error}"
        assert response.overall_code is not Code.UNKNOWN
        assert response.overall_code.name == call.overall, where
        assert view(response) == list(call.statuses), where
        if call.headers is not None:
            assert list(response.response_headers_to_add) == list(call.headers), where
        if call.metadata is not None:
            assert response.dynamic_metadata == call.metadata, where
        for key, value in call.counters.items():
            assert await store.read([key]) == [value], f"{where}: counter {key}"
        snapshot = service.stats.snapshot()
        for name, value in call.stats.items():
            assert snapshot.get(name, 0) == value, f"{where}: stat {name} in {snapshot}"


def key(*parts: object) -> str:
    return "_".join(str(p) for p in parts)


RL = "ratelimit.service.rate_limit."

# --- 1.1 structure, 1.2 units, 1.3 matching ------------------------------------------------------

STRUCTURE = """
domain: s
descriptors:
  - key: allow
    value: listed
  - key: both
    rate_limit: {unit: minute, requests_per_unit: 5, name: parent}
    descriptors:
      - key: child
        rate_limit: {unit: hour, requests_per_unit: 2}
  - key: nullvalue
    value:
    rate_limit: {unit: MiNuTe, requests_per_unit: 1}
  - key: emptyvalue
    value: ""
    rate_limit: {unit: Second, requests_per_unit: 1}
  - key: zero
    rate_limit: {unit: minute}
  - key: a
    value: b_c
    rate_limit: {unit: minute, requests_per_unit: 7}
  - key: x
    value: y*
    rate_limit: {unit: minute, requests_per_unit: 8}
  - key: k1
    descriptors:
      - key: k2
        value: v2
        rate_limit: {unit: day, requests_per_unit: 3}
"""

UNITS_CONFIG = "domain: u\ndescriptors:\n" + "".join(
    f"  - key: {u.lower()}\n    rate_limit: {{unit: {u.lower()}, requests_per_unit: 1}}\n"
    for u in SECONDS
)

CASES: list[Case] = [
    Case(
        "1.1 allow-list node matches and gives no limit, creates no counter",
        STRUCTURE,
        [
            Call(req("s", d(("allow", "listed"))), statuses=[EMPTY]),
            Call(req("s", d(("allow", "other"))), statuses=[EMPTY]),
        ],
    ),
    Case(
        "1.1/1.3 node with a limit and children; depth and order must match exactly",
        STRUCTURE,
        [
            Call(
                req("s", d(("both", "1"))),
                statuses=[ok(5, "MINUTE", 4, "parent")],
                counters={key("s_both", "1", MINUTE_START): 1},
            ),
            Call(
                req("s", d(("both", "1"), ("child", "2"))),
                statuses=[ok(2, "HOUR", 1)],
                counters={
                    key("s_both", "1", "child", "2", NOW - NOW % 3600): 1,
                    key("s_both", "1", MINUTE_START): 1,
                },
            ),
            Call(req("s", d(("both", "1"), ("child", "2"), ("extra", "3"))), statuses=[EMPTY]),
            Call(req("s", d(("child", "2"), ("both", "1"))), statuses=[EMPTY]),
            Call(req("s", d(("k1", "v"))), statuses=[EMPTY]),  # path node without a limit
            Call(req("s", d(("k1", "v"), ("k2", "v2"))), statuses=[ok(3, "DAY", 2)]),
            Call(req("s", d(("k1", "v"), ("k2", "other"))), statuses=[EMPTY]),
            Call(req("s", d(("k2", "v2"))), statuses=[EMPTY]),
            Call(req("s", d()), statuses=[EMPTY]),  # no entries: nothing matches
        ],
    ),
    Case(
        "1.1/1.2 null or empty value is key-only; unit is case-insensitive; omitted rpu is 0",
        STRUCTURE,
        [
            Call(req("s", d(("nullvalue", "q"))), statuses=[ok(1, "MINUTE", 0)]),
            Call(req("s", d(("emptyvalue", "q"))), statuses=[ok(1, "SECOND", 0)]),
            Call(req("s", d(("emptyvalue", ""))), statuses=[ok(1, "SECOND", 0)]),
            Call(
                req("s", d(("zero", "z"))),
                "OVER_LIMIT",
                [over(0, "MINUTE")],
                counters={key("s_zero", "z", MINUTE_START): 1},
            ),
        ],
    ),
    Case(
        "1.1 descriptors null or empty is a valid, limitless domain",
        ["domain: nulls\ndescriptors:\n", "domain: empties\ndescriptors: []\n", "domain: bare\n"],
        [
            Call(req("nulls", d(("a", "b"))), statuses=[EMPTY]),
            Call(req("empties", d(("a", "b"))), statuses=[EMPTY]),
            Call(req("bare", d(("a", "b"))), statuses=[EMPTY]),
        ],
    ),
    Case(
        "1.2 every unit: epoch-aligned window start in the key, reset = unit - now mod unit",
        UNITS_CONFIG,
        [
            Call(
                req("u", d((u.lower(), "v"))),
                statuses=[ok(1, u, 0)],
                counters={key("u", u.lower(), "v", NOW - NOW % SECONDS[u]): 1},
            )
            for u in SECONDS
        ],
    ),
    Case(
        "1.3 unknown domain: OK, empty, domain_not_found per descriptor; keys case-sensitive",
        STRUCTURE,
        [
            Call(
                req("S", d(("both", "1")), d(("both", "2"))),
                statuses=[EMPTY, EMPTY],
                stats={RL + "S.domain_not_found": 2},
            ),
            Call(req("s", d(("Both", "1"))), statuses=[EMPTY]),
            Call(req("s", d(("ALLOW", "listed"))), statuses=[EMPTY]),
        ],
    ),
    Case(
        "1.3 joined key_value lookups: (a_b, c) finds (a, b_c); (x_y, z) matches (x, y*)",
        STRUCTURE,
        [
            Call(
                req("s", d(("a_b", "c"))),
                statuses=[ok(7, "MINUTE", 6)],
                counters={key("s_a_b", "c", MINUTE_START): 1},
                stats={RL + "s.a_b_c.total_hits": 1},
            ),
            Call(req("s", d(("a", "b_c"))), statuses=[ok(7, "MINUTE", 5)]),
            Call(
                req("s", d(("x_y", "z"))),
                statuses=[ok(8, "MINUTE", 7)],
                stats={RL + "s.x_y*.total_hits": 1},
            ),
        ],
    ),
]

# --- 1.4 wildcards -------------------------------------------------------------------------------

WILDCARDS = """
domain: w
descriptors:
  - key: path
    value: /api/exact
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: path
    value: /api/*
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: path
    value: /api/v*
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: path
    value: /users/*/avatar
    rate_limit: {unit: minute, requests_per_unit: 4}
  - key: path
    value: a*b*c
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: path
    rate_limit: {unit: minute, requests_per_unit: 6}
  - key: any
    value: "*"
    rate_limit: {unit: minute, requests_per_unit: 7}
  - key: any
    rate_limit: {unit: minute, requests_per_unit: 8}
  - key: shared
    value: "p*"
    share_threshold: true
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: metric
    value: "m*"
    value_to_metric: true
    rate_limit: {unit: minute, requests_per_unit: 9}
  - key: both
    value: "b*"
    value_to_metric: true
    share_threshold: true
    rate_limit: {unit: minute, requests_per_unit: 9}
"""

CASES += [
    Case(
        "1.4 exact > first matching wildcard in file order > key-only; * anywhere, several",
        WILDCARDS,
        [
            Call(req("w", d(("path", "/api/exact"))), statuses=[ok(1, "MINUTE", 0)]),
            # /api/v1 matches both /api/* and /api/v*: the first in file order wins
            Call(
                req("w", d(("path", "/api/v1"))),
                statuses=[ok(2, "MINUTE", 1)],
                stats={RL + "w.path_/api/*.total_hits": 1},
            ),
            Call(req("w", d(("path", "/api/"))), statuses=[ok(2, "MINUTE", 1)]),
            Call(req("w", d(("path", "/users/42/avatar"))), statuses=[ok(4, "MINUTE", 3)]),
            Call(req("w", d(("path", "/users/42/avatarx"))), statuses=[ok(6, "MINUTE", 5)]),
            Call(req("w", d(("path", "abc"))), statuses=[ok(5, "MINUTE", 4)]),
            Call(req("w", d(("path", "aXbYbZc"))), statuses=[ok(5, "MINUTE", 4)]),
            Call(req("w", d(("path", "acb"))), statuses=[ok(6, "MINUTE", 5)]),
            Call(req("w", d(("path", "/other"))), statuses=[ok(6, "MINUTE", 5)]),
        ],
    ),
    Case(
        '1.4 value "*" matches every value, the empty one too, and shadows the key-only sibling',
        WILDCARDS,
        [
            Call(req("w", d(("any", ""))), statuses=[ok(7, "MINUTE", 6)]),
            Call(req("w", d(("any", "x"))), statuses=[ok(7, "MINUTE", 6)]),
        ],
    ),
    Case(
        "1.4/2.1 wildcard counters are per request value unless share_threshold",
        WILDCARDS,
        [
            Call(
                req("w", d(("path", "/api/a"))),
                statuses=[ok(2, "MINUTE", 1)],
                counters={key("w_path", "/api/a", MINUTE_START): 1},
            ),
            Call(
                req("w", d(("path", "/api/b"))),
                statuses=[ok(2, "MINUTE", 1)],
                counters={key("w_path", "/api/b", MINUTE_START): 1},
            ),
            Call(
                req("w", d(("shared", "p1"))),
                statuses=[ok(2, "MINUTE", 1)],
                counters={key("w_shared", "p*", MINUTE_START): 1},
                stats={RL + "w.shared_p*.total_hits": 1},
            ),
            Call(req("w", d(("shared", "p2"))), statuses=[ok(2, "MINUTE", 0)]),
            Call(
                req("w", d(("shared", "p3"))),
                "OVER_LIMIT",
                [over(2, "MINUTE")],
                counters={key("w_shared", "p*", MINUTE_START): 3, key("w_shared", "p3", 0): 0},
            ),
        ],
    ),
    Case(
        "1.4/4.1 wildcard stat names: pattern; value_to_metric the value; share_threshold wins",
        WILDCARDS,
        [
            Call(
                req("w", d(("metric", "m1")), d(("both", "b1"))),
                statuses=[ok(9, "MINUTE", 8), ok(9, "MINUTE", 8)],
                stats={RL + "w.metric_m1.total_hits": 1, RL + "w.both_b*.total_hits": 1},
            ),
        ],
    ),
]

# --- 1.5 several descriptors, 1.6 status shapes, 1.7 hits_addend ---------------------------------

BASIC = """
domain: b
descriptors:
  - key: small
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: big
    rate_limit: {unit: minute, requests_per_unit: 10}
  - key: hour
    rate_limit: {unit: hour, requests_per_unit: 3, name: hourly}
  - key: free
    rate_limit: {unlimited: true}
  - key: shadow
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: quota
    quota_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: quota2
    quota_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
"""

CASES += [
    Case(
        "1.5 every matched descriptor is counted, also when another one denies; duplicates twice",
        BASIC,
        [
            Call(
                req("b", d(("small", "u")), d(("big", "u"))),
                statuses=[ok(1, "MINUTE", 0), ok(10, "MINUTE", 9)],
            ),
            Call(
                req("b", d(("small", "u")), d(("big", "u")), d(("big", "u"))),
                "OVER_LIMIT",
                [over(1, "MINUTE"), ok(10, "MINUTE", 8), ok(10, "MINUTE", 7)],
                counters={
                    key("b_small", "u", MINUTE_START): 2,
                    key("b_big", "u", MINUTE_START): 3,
                },
            ),
        ],
    ),
    Case(
        "1.5/2.1 STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: only the descriptor going over is added",
        BASIC,
        [
            Call(req("b", d(("small", "u"))), statuses=[ok(1, "MINUTE", 0)]),
            Call(
                req("b", d(("small", "u")), d(("big", "u"))),
                "OVER_LIMIT",
                [over(1, "MINUTE"), ok(10, "MINUTE", 10)],
                counters={key("b_small", "u", MINUTE_START): 2, key("b_big", "u", MINUTE_START): 0},
            ),
            Call(
                req("b", d(("big", "u"))),
                statuses=[ok(10, "MINUTE", 9)],
                counters={key("b_big", "u", MINUTE_START): 1},
            ),
        ],
        options={"stop_increment_when_over_limit": True},
    ),
    Case(
        "1.6 status shapes: no match, unlimited, within, exactly at the limit, over (name echoed)",
        BASIC,
        [
            Call(
                req("b", d(("nothing", "x")), d(("free", "x")), d(("hour", "x"))),
                statuses=[EMPTY, UNLIMITED, ok(3, "HOUR", 2, "hourly")],
                counters={key("b_free", "x", MINUTE_START): 0},
            ),
            Call(req("b", d(("hour", "x")), hits=2), statuses=[ok(3, "HOUR", 0, "hourly")]),
            Call(req("b", d(("hour", "x"))), "OVER_LIMIT", [over(3, "HOUR", "hourly")]),
        ],
    ),
    Case(
        "1.6/1.8 shadow mode: OK with the limit and 0 remaining, stats over_limit and shadow_mode",
        BASIC,
        [
            Call(req("b", d(("shadow", "x"))), statuses=[ok(1, "MINUTE", 0)]),
            Call(
                req("b", d(("shadow", "x"))),
                statuses=[("OK", (1, "MINUTE"), 0, 40)],
                counters={key("b_shadow", "x", MINUTE_START): 2},
                stats={
                    RL + "b.shadow.over_limit": 1,
                    RL + "b.shadow.shadow_mode": 1,
                    RL + "b.shadow.within_limit": 1,
                    RL + "b.shadow.total_hits": 2,
                },
            ),
        ],
    ),
    Case(
        "1.7 request hits_addend 0 means 1; n adds n; per-descriptor value wins, 0 is a probe",
        BASIC,
        [
            Call(req("b", d(("big", "u")), hits=0), statuses=[ok(10, "MINUTE", 9)]),
            Call(req("b", d(("big", "u")), hits=3), statuses=[ok(10, "MINUTE", 6)]),
            Call(
                req("b", d(("big", "u"), addend=2), d(("small", "u")), hits=5),
                "OVER_LIMIT",
                [ok(10, "MINUTE", 4), over(1, "MINUTE")],
                counters={key("b_small", "u", MINUTE_START): 5},
            ),
            Call(
                req("b", d(("big", "u"), addend=0), hits=5),
                statuses=[ok(10, "MINUTE", 4)],
                counters={key("b_big", "u", MINUTE_START): 6},
            ),
            Call(req("b", d(("big", "u"), addend=4)), statuses=[ok(10, "MINUTE", 0)]),
            # a probe at exactly the limit is OK with 0 left, and changes nothing
            Call(req("b", d(("big", "u"), addend=0)), statuses=[ok(10, "MINUTE", 0)]),
            Call(
                req("b", d(("big", "u"), addend=11)),
                "OVER_LIMIT",
                [over(10, "MINUTE")],
                counters={key("b_big", "u", MINUTE_START): 21},  # not clamped
            ),
            # the stored count now exceeds the limit: the probe reports OVER_LIMIT
            Call(
                req("b", d(("big", "u"), addend=0)),
                "OVER_LIMIT",
                [over(10, "MINUTE")],
                counters={key("b_big", "u", MINUTE_START): 21},
            ),
        ],
    ),
    Case(
        "1.7/4.1 stats count hits, and a call crossing a threshold splits its addend",
        BASIC,
        [
            # limit 10, near threshold 8: 0 -> 9 is within 9, near 1
            Call(
                req("b", d(("big", "u")), hits=9),
                statuses=[ok(10, "MINUTE", 1)],
                stats={
                    RL + "b.big.total_hits": 9,
                    RL + "b.big.within_limit": 9,
                    RL + "b.big.near_limit": 1,
                },
            ),
            # 9 -> 12: near += 10 - max(8, 9) = 1, over += 2
            Call(
                req("b", d(("big", "u")), hits=3),
                "OVER_LIMIT",
                [over(10, "MINUTE")],
                stats={
                    RL + "b.big.total_hits": 12,
                    RL + "b.big.within_limit": 9,
                    RL + "b.big.near_limit": 2,
                    RL + "b.big.over_limit": 2,
                },
            ),
            # already over: the whole addend is over
            Call(
                req("b", d(("big", "u")), hits=4),
                "OVER_LIMIT",
                [over(10, "MINUTE")],
                stats={RL + "b.big.over_limit": 6, RL + "b.big.near_limit": 2},
            ),
        ],
    ),
]

# --- 1.8 replaces and shadow, 1.9 quota mode -----------------------------------------------------

REPLACES = """
domain: r
descriptors:
  - key: premium
    rate_limit:
      unlimited: true
      replaces: [{name: per_user}]
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1, name: per_user}
  - key: user2
    rate_limit: {unit: minute, requests_per_unit: 1, name: per_user}
  - key: vip
    rate_limit:
      unit: minute
      requests_per_unit: 5
      name: vip
      replaces: [{name: per_user}]
  - key: m1
    rate_limit: {unit: minute, requests_per_unit: 1, name: one, replaces: [{name: two}]}
  - key: m2
    rate_limit: {unit: minute, requests_per_unit: 1, name: two, replaces: [{name: one}]}
  - key: inside
    rate_limit: {unit: minute, requests_per_unit: 1, shadow_mode: true}
  - key: free
    rate_limit: {unlimited: true, name: free}
  - key: takes_free
    rate_limit: {unit: minute, requests_per_unit: 3, replaces: [{name: free}]}
"""

CASES += [
    Case(
        "1.8 replaces: union over matched limits (unlimited too); replaced: empty, uncounted",
        REPLACES,
        [
            Call(req("r", d(("user", "a"))), statuses=[ok(1, "MINUTE", 0, "per_user")]),
            Call(req("r", d(("user", "a"))), "OVER_LIMIT", [over(1, "MINUTE", "per_user")]),
            # already over, but replaced: OK, empty status, not incremented
            Call(
                req("r", d(("user", "a")), d(("premium", "a"))),
                statuses=[EMPTY, UNLIMITED],
                counters={key("r_user", "a", MINUTE_START): 2},
            ),
            # names need not be unique: both per_user limits are dropped
            Call(
                req("r", d(("user", "a")), d(("user2", "a")), d(("vip", "a"))),
                statuses=[EMPTY, EMPTY, ok(5, "MINUTE", 4, "vip")],
                counters={key("r_user2", "a", MINUTE_START): 0},
            ),
        ],
    ),
    Case(
        # The reference sets unlimited descriptors aside before it applies replaces.
        "1.8 a named unlimited limit is never replaced",
        REPLACES,
        [
            Call(
                req("r", d(("free", "a")), d(("takes_free", "a"))),
                statuses=[UNLIMITED, ok(3, "MINUTE", 2)],
            )
        ],
    ),
    Case(
        "1.8 mutual replacement drops both",
        REPLACES,
        [Call(req("r", d(("m1", "a")), d(("m2", "a"))), statuses=[EMPTY, EMPTY])],
    ),
    Case(
        "1.8 shadow_mode inside rate_limit is ignored",
        REPLACES,
        [
            Call(req("r", d(("inside", "a"))), statuses=[ok(1, "MINUTE", 0)]),
            Call(req("r", d(("inside", "a"))), "OVER_LIMIT", [over(1, "MINUTE")]),
        ],
    ),
    Case(
        "1.8 SHADOW_MODE=true keeps OVER_LIMIT statuses, only overall becomes OK (and a stat)",
        BASIC,
        [
            Call(req("b", d(("small", "u"))), statuses=[ok(1, "MINUTE", 0)]),
            Call(
                req("b", d(("small", "u")), d(("big", "u"))),
                "OK",
                [over(1, "MINUTE"), ok(10, "MINUTE", 9)],
                stats={"ratelimit.service.global_shadow_mode": 1},
            ),
        ],
        options={"shadow_mode": True},
    ),
    Case(
        "1.9 quota_mode: own OVER_LIMIT, overall OVER_LIMIT only when every quota one is over",
        BASIC,
        [
            Call(req("b", d(("quota", "a"))), statuses=[ok(1, "MINUTE", 0)]),
            Call(
                req("b", d(("quota", "a")), d(("quota2", "a"))),
                "OK",
                [over(1, "MINUTE"), ok(1, "MINUTE", 0)],
            ),
            Call(
                req("b", d(("quota", "a")), d(("quota2", "a"))),
                "OVER_LIMIT",
                [over(1, "MINUTE"), over(1, "MINUTE")],
            ),
            # an ordinary descriptor keeps the "any one" rule next to quota ones
            Call(
                req("b", d(("quota", "b")), d(("small", "b")), d(("small", "b"))),
                "OVER_LIMIT",
                [ok(1, "MINUTE", 0), ok(1, "MINUTE", 0), over(1, "MINUTE")],
            ),
        ],
    ),
    Case(
        # Unlimited descriptors take no part in the verdict, quota or not.
        "1.9 QUOTA_MODE=true: an unlimited descriptor does not keep the others from OVER_LIMIT",
        REPLACES,
        [
            Call(req("r", d(("user", "q"))), statuses=[ok(1, "MINUTE", 0, "per_user")]),
            Call(
                req("r", d(("user", "q")), d(("free", "q"))),
                "OVER_LIMIT",
                [over(1, "MINUTE", "per_user"), UNLIMITED],
            ),
        ],
        options={"quota_mode": True},
    ),
    Case(
        "1.9 QUOTA_MODE=true treats every descriptor as quota mode",
        BASIC,
        [
            Call(req("b", d(("small", "a"))), statuses=[ok(1, "MINUTE", 0)]),
            Call(
                req("b", d(("small", "a")), d(("big", "a"))),
                "OK",
                [over(1, "MINUTE"), ok(10, "MINUTE", 9)],
            ),
            Call(req("b", d(("small", "a"))), "OVER_LIMIT", [over(1, "MINUTE")]),
        ],
        options={"quota_mode": True},
    ),
]

# --- 1.10 request-supplied limits ----------------------------------------------------------------

CASES += [
    Case(
        "1.10 override: used without the tree, for any entries, only in a known domain",
        REPLACES + "  - key: shadowed\n    shadow_mode: true\n"
        "    rate_limit: {unit: minute, requests_per_unit: 100, name: per_user}\n",
        [
            Call(
                req("r", d(("nowhere", "a"), ("deep", "b"), limit=(1, "HOUR"))),
                statuses=[("OK", (1, "HOUR"), 0, _reset("HOUR"))],
                counters={key("r_nowhere", "a", "deep", "b", NOW - NOW % 3600): 1},
                stats={RL + "r.nowhere_a.deep_b.total_hits": 1},
            ),
            # shadow_mode and name of the config node are not applied; replaces cannot reach it
            Call(
                req("r", d(("shadowed", "a"), limit=(0, "MINUTE")), d(("vip", "a"))),
                "OVER_LIMIT",
                [over(0, "MINUTE"), ok(5, "MINUTE", 4, "vip")],
            ),
            Call(req("other", d(("x", "a"), limit=(0, "MINUTE"))), statuses=[EMPTY]),
            Call(
                req("r", Descriptor((("x", "a"),), LimitOverride(1, 0))),
                error="rate limit override has an invalid unit (0)",
            ),
        ],
    ),
]

# --- 1.11 service-side response headers ----------------------------------------------------------

CASES += [
    Case(
        "1.11 headers: lowest remaining among limited statuses, first on ties",
        BASIC,
        [
            Call(
                req("b", d(("free", "a")), d(("nothing", "a")), d(("big", "a"), addend=3)),
                statuses=[UNLIMITED, EMPTY, ok(10, "MINUTE", 7)],
                headers=[
                    ("RateLimit-Limit", "10"),
                    ("RateLimit-Remaining", "7"),
                    ("RateLimit-Reset", "40"),
                ],
            ),
            Call(
                req("b", d(("hour", "a"), addend=2), d(("big", "b"), addend=9)),
                statuses=[ok(3, "HOUR", 1, "hourly"), ok(10, "MINUTE", 1)],
                headers=[
                    ("RateLimit-Limit", "3"),
                    ("RateLimit-Remaining", "1"),
                    ("RateLimit-Reset", str(_reset("HOUR"))),
                ],
            ),
            Call(
                req("b", d(("free", "a")), d(("nothing", "a"))),
                statuses=[UNLIMITED, EMPTY],
                headers=[],
            ),
        ],
        options={"response_headers": True},
    ),
    Case(
        "1.11 headers: an OVER_LIMIT non-quota status wins (the last one); renamed headers",
        BASIC,
        [
            Call(
                req("b", d(("small", "a")), d(("hour", "a"), addend=4), d(("big", "a"))),
                "OVER_LIMIT",
                [ok(1, "MINUTE", 0), over(3, "HOUR", "hourly"), ok(10, "MINUTE", 9)],
                headers=[("X-L", "3"), ("X-R", "0"), ("X-T", str(_reset("HOUR")))],
            ),
            Call(
                req("b", d(("hour", "a")), d(("small", "a")), d(("big", "a"))),
                "OVER_LIMIT",
                [over(3, "HOUR", "hourly"), over(1, "MINUTE"), ok(10, "MINUTE", 8)],
                headers=[("X-L", "1"), ("X-R", "0"), ("X-T", "40")],
            ),
        ],
        options={
            "response_headers": True,
            "limit_header": "X-L",
            "remaining_header": "X-R",
            "reset_header": "X-T",
        },
    ),
    Case(
        "1.11 headers: a quota-mode OVER_LIMIT does not override, a later over non-quota does",
        BASIC,
        [
            Call(req("b", d(("quota", "q"))), statuses=[ok(1, "MINUTE", 0)]),
            Call(
                req("b", d(("quota", "q")), d(("hour", "q"), addend=2)),
                "OVER_LIMIT",
                [over(1, "MINUTE"), ok(3, "HOUR", 1, "hourly")],
                headers=[
                    ("RateLimit-Limit", "1"),
                    ("RateLimit-Remaining", "0"),
                    ("RateLimit-Reset", "40"),
                ],
            ),
        ],
        options={"response_headers": True},
    ),
]

# --- 1.12 dynamic metadata -----------------------------------------------------------------------

METADATA = """
domain: md
descriptors:
  - key: a
    metadata: {tier: gold, nested: {p: 1, q: 2}}
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: b
    metadata: {tier: silver, extra: true, nested: {q: 3, r: 4}}
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: c
    metadata: {blocked: yes}
    rate_limit: {unit: minute, requests_per_unit: 0}
  - key: s
    shadow_mode: true
    metadata: {shadow: true}
    rate_limit: {unit: minute, requests_per_unit: 0}
  - key: u
    metadata: {unlimited: true}
    rate_limit: {unlimited: true}
"""

CASES += [
    Case(
        "1.12 dynamic metadata: domain, descriptors, hitsAddend, metadata of passed descriptors",
        METADATA,
        [
            Call(
                req(
                    "md",
                    d(("a", "1")),
                    d(("c", "1")),
                    d(("b", "1"), addend=2),
                    d(("s", "1")),
                    hits=3,
                ),
                "OVER_LIMIT",
                [
                    ok(5, "MINUTE", 2),
                    over(0, "MINUTE"),
                    ok(5, "MINUTE", 3),
                    ("OK", (0, "MINUTE"), 0, 40),
                ],
                metadata={
                    "domain": "md",
                    "descriptors": [
                        {"entries": ["a=1"]},
                        {"entries": ["c=1"]},
                        {"entries": ["b=1"], "hitsAddend": 2},
                        {"entries": ["s=1"]},
                    ],
                    "hitsAddend": 3,
                    "metadata": {
                        "tier": "gold",
                        "nested": {"p": 1, "q": 2, "r": 4},
                        "extra": True,
                        "shadow": True,
                    },
                },
            ),
            # an unlimited descriptor is not one of the reference's "passed" descriptors
            Call(
                req("md", d(("u", "1")), d(("a", "2"))),
                statuses=[UNLIMITED, ok(5, "MINUTE", 4)],
                metadata={
                    "domain": "md",
                    "descriptors": [{"entries": ["u=1"]}, {"entries": ["a=2"]}],
                    "metadata": {"tier": "gold", "nested": {"p": 1, "q": 2}},
                },
            ),
            Call(
                req("md", d(("zzz", "1"))),
                statuses=[EMPTY],
                metadata={"domain": "md", "descriptors": [{"entries": ["zzz=1"]}]},
            ),
        ],
        options={"dynamic_metadata": True},
    ),
]


STATS_CONFIG = """
domain: st
descriptors:
  - key: ip
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: ip
    value: 10.0.0.1
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: host
    value: "a:b|c"
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: tenant
    descriptors:
      - key: user
        detailed_metric: true
        rate_limit: {unit: minute, requests_per_unit: 5}
  - key: route
    value_to_metric: true
    descriptors:
      - key: verb
        rate_limit: {unit: minute, requests_per_unit: 5}
"""

CASES.append(
    Case(
        "4.1 stat keys: config path, IPv4 dots and ':' '|' sanitised, detailed and value_to_metric",
        STATS_CONFIG,
        [
            Call(
                req(
                    "st",
                    d(("ip", "10.0.0.1")),
                    d(("ip", "10.0.0.2")),
                    d(("host", "a:b|c")),
                    d(("tenant", "t1"), ("user", "u1")),
                    d(("route", "/r"), ("verb", "GET")),
                ),
                statuses=[ok(5, "MINUTE", 4)] * 5,
                stats={
                    RL + "st.ip_10_0_0_1.total_hits": 1,
                    RL + "st.ip.total_hits": 1,
                    RL + "st.host_a_b_c.total_hits": 1,
                    RL + "st.tenant_t1.user_u1.total_hits": 1,
                    RL + "st.route_/r.verb.total_hits": 1,
                    RL + "st.ip.within_limit": 1,
                },
            )
        ],
    )
)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_rule(case: Case) -> None:
    await run_case(case, MemoryStore(clock=lambda: float(NOW)))


# --- 1.13 validation: the reference's messages ---------------------------------------------------

LIMITED = "rate_limit: {unit: minute, requests_per_unit: 1}"


def one(body: str) -> str:
    """A domain ``d`` with one descriptor ``k`` carrying ``body``."""
    return f"domain: d\ndescriptors:\n  - key: k\n    {body}\n"


REJECTED: list[tuple[str, str | list[str], str]] = [
    (
        "yaml syntax",
        "domain: d\ndescriptors:\n  - key: k\n    value: *\n",
        "error loading config file: yaml: ",
    ),
    (
        "unknown field",
        "domain: d\ndescriptors:\n  - key: k\n    limit: 1\n",
        "config error, unknown key 'limit'",
    ),
    (
        "unknown field deep",
        "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: minute, per: 1}\n",
        "config error, unknown key 'per'",
    ),
    (
        "non-string key",
        "domain: d\ndescriptors:\n  - key: k\n    1: x\n",
        "config error, key is not of type string: 1",
    ),
    (
        "list of non-map",
        "domain: d\ndescriptors:\n  - k\n",
        "config error, yaml file contains list of type other than map: k",
    ),
    (
        "float",
        one("rate_limit: {unit: minute, requests_per_unit: 1.5}"),
        "error checking config",
    ),
    (
        "negative rpu",
        one("rate_limit: {unit: minute, requests_per_unit: -1}"),
        "cannot unmarshal !!int `-1` into uint32",
    ),
    (
        "rpu over uint32",
        one("rate_limit: {unit: minute, requests_per_unit: 4294967296}"),
        "into uint32",
    ),
    ("missing domain", "descriptors:\n  - key: k\n", "config file cannot have empty domain"),
    ("empty domain", "domain: ''\n", "config file cannot have empty domain"),
    ("duplicate domain", ["domain: d\n", "domain: d\n"], "duplicate domain 'd' in config file"),
    (
        "empty key",
        f"domain: d\ndescriptors:\n  - value: v\n    {LIMITED}\n",
        "descriptor has empty key",
    ),
    (
        "duplicate key",
        f"domain: d\ndescriptors:\n  - key: k\n  - key: k\n    {LIMITED}\n",
        "duplicate descriptor composite key 'd.k'",
    ),
    (
        "duplicate key+value nested",
        "domain: d\ndescriptors:\n  - key: p\n    descriptors:\n"
        "      - {key: k, value: v}\n      - {key: k, value: v}\n",
        "duplicate descriptor composite key 'd.p.k_v'",
    ),
    (
        "duplicate across merged files",
        ["domain: d\ndescriptors:\n  - key: k\n", "domain: d\ndescriptors:\n  - key: k\n"],
        "duplicate descriptor composite key 'd.k'",
    ),
    (
        "missing unit",
        "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {requests_per_unit: 1}\n",
        "invalid rate limit unit ''",
    ),
    (
        "unknown unit",
        "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight}\n",
        "invalid rate limit unit 'fortnight'",
    ),
    (
        "unit UNKNOWN",
        "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: unknown}\n",
        "invalid rate limit unit 'unknown'",
    ),
    (
        "unlimited with unit",
        "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unlimited: true, unit: second}\n",
        "should not specify rate limit unit when unlimited",
    ),
    (
        "empty replaces",
        "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, replaces: [{}]}\n",
        "should not have an empty replaces entry",
    ),
    (
        "replaces self",
        one("rate_limit: {unit: second, name: n, replaces: [{name: n}]}"),
        "replaces should not contain name of same descriptor",
    ),
    (
        "share_threshold without *",
        one(f"value: v\n    share_threshold: true\n    {LIMITED}"),
        "share_threshold can only be used with wildcard values",
    ),
    (
        "metadata not a Struct",
        f"domain: d\ndescriptors:\n  - key: k\n    metadata: {{1: x}}\n    {LIMITED}\n",
        "error parsing metadata: ",
    ),
]


@pytest.mark.parametrize(
    ("texts", "fragment"), [(t, f) for _, t, f in REJECTED], ids=[i for i, _, _ in REJECTED]
)
def test_rejected_config_has_the_reference_message(texts: str | list[str], fragment: str) -> None:
    merge = "merged" in fragment or (isinstance(texts, list) and "composite" in fragment)
    with pytest.raises(FindingsError) as caught:
        compile_texts(texts, merge=merge)
    messages = [f.message for f in caught.value.findings]
    assert any(fragment in m for m in messages), messages


ACCEPTED = {
    "rpu on an unlimited limit is ignored": "rate_limit: {unlimited: true, requests_per_unit: 5}",
    "unlimited with an invalid unit": "rate_limit: {unlimited: true, unit: fortnight}",
    "replaces naming no limit": "rate_limit: {unit: second, name: a, replaces: [{name: ghost}]}",
    "children without a limit": "descriptors: [{key: c, " + LIMITED + "}]",
    "misplaced known name": "rate_limit: {unit: second, key: x, domain: y, shadow_mode: true}",
    "metadata content unchecked": "metadata: {anything: [1.5, {deep: null}]}",
    "literal scalars": "value: 007",
}


@pytest.mark.parametrize("body", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_unchecked_things_load(body: str) -> None:
    text = (
        f"domain: d\ndescriptors:\n  - key: k\n    {body}\n  - key: w\n    value: 'a*'\n"
        "  - key: w\n    value: 'a*b'\n"
    )  # an unreachable wildcard is not checked either
    assert "d" in compile_texts(text).domains


async def test_yaml_scalars_keep_their_literal_text() -> None:
    text = (
        "domain: d\ndescriptors:\n"
        "  - {key: k, value: 007, rate_limit: {unit: minute, requests_per_unit: 1}}\n"
        "  - {key: k, value: true, rate_limit: {unit: minute, requests_per_unit: 2}}\n"
        "  - {key: n, value: null, rate_limit: {unit: minute, requests_per_unit: 3}}\n"
    )
    service = make_service(compile_texts(text), MemoryStore(clock=lambda: float(NOW)))
    response = await service.should_rate_limit(
        req("d", d(("k", "007")), d(("k", "true")), d(("k", "7")), d(("n", "x")))
    )
    assert view(response) == [ok(1, "MINUTE", 0), ok(2, "MINUTE", 1), EMPTY, ok(3, "MINUTE", 2)]


# --- 1.14 loading --------------------------------------------------------------------------------


def test_one_bad_file_rejects_the_whole_set_and_counts_a_load_error() -> None:
    stats = Stats()
    compile_files = compiler(CompileOptions(), stats)
    good = SourceFile("good.yaml", "domain: good\n")
    bad = SourceFile("bad.yaml", "domain: bad\ndescriptors:\n  - key: k\n    oops: 1\n")
    assert "good" in compile_files([good]).domains
    with pytest.raises(FindingsError):
        compile_files([good, bad])
    snapshot = stats.snapshot()
    assert snapshot["ratelimit.service.config_load_success"] == 1
    assert snapshot["ratelimit.service.config_load_error"] == 1


def test_merge_domain_config_joins_files() -> None:
    files = ["domain: d\ndescriptors:\n  - key: a\n", "domain: d\ndescriptors:\n  - key: b\n"]
    merged = compile_texts(files, merge=True)
    assert set(merged.domains["d"].root.children) == {"a", "b"}


async def test_without_a_config_every_call_errors() -> None:
    service = make_service(None, MemoryStore())
    with pytest.raises(RequestError, match=r"^no rate limit configuration loaded$"):
        await service.should_rate_limit(req("d", d(("k", "v"))))


async def test_counters_survive_a_reload() -> None:
    configs = [
        compile_texts(
            f"domain: d\ndescriptors:\n  - key: k\n    rate_limit: "
            f"{{unit: minute, requests_per_unit: {n}}}\n"
        )
        for n in (10, 20)
    ]
    active = [configs[0]]
    store = MemoryStore(clock=lambda: float(NOW))
    service = RateLimitService(lambda: active[0], store, clock=lambda: float(NOW))
    await service.should_rate_limit(req("d", d(("k", "v")), hits=4))
    active[0] = configs[1]
    response = await service.should_rate_limit(req("d", d(("k", "v"))))
    assert view(response) == [ok(20, "MINUTE", 15)]


# --- 2.1 counter names and TTL, memory and Redis -------------------------------------------------

KEYS_CONFIG = """
domain: messaging
descriptors:
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit: {unit: day, requests_per_unit: 5}
  - key: path
    value: /api/*
    share_threshold: true
    rate_limit: {unit: hour, requests_per_unit: 5}
"""
DAY_START = NOW - NOW % 86400
HOUR_START = NOW - NOW % 3600
KEY_REQUESTS = req(
    "messaging",
    d(("message_type", "marketing"), ("to_number", "2065550100")),
    d(("path", "/api/x")),
)
EXPECTED_KEYS = [
    f"pre:messaging_message_type_marketing_to_number_2065550100_{DAY_START}",
    f"pre:messaging_path_/api/*_{HOUR_START}",
]


async def test_counter_names_and_ttl_on_memory() -> None:
    store = Recording()
    service = make_service(compile_texts(KEYS_CONFIG), store, cache_key_prefix="pre:")
    await service.should_rate_limit(KEY_REQUESTS)
    assert store.ops == [(EXPECTED_KEYS[0], 1, 86400), (EXPECTED_KEYS[1], 1, 3600)]
    jittered = make_service(
        compile_texts(KEYS_CONFIG), store, cache_key_prefix="pre:", expiration_jitter_max_seconds=5
    )
    store.ops.clear()
    for _ in range(40):
        await jittered.should_rate_limit(KEY_REQUESTS)
    day_ttls = {ttl for k, _, ttl in store.ops if k == EXPECTED_KEYS[0]}
    assert day_ttls <= set(range(86400, 86405)) and len(day_ttls) > 1


async def test_counter_names_and_ttl_on_redis(redis_server: RedisServer) -> None:
    store = LeanRedisStore.from_settings(RedisSettings(url=redis_server.url, timeout=0.5))
    await store.start()
    try:
        service = make_service(
            compile_texts(KEYS_CONFIG),
            store,
            cache_key_prefix="pre:",
            expiration_jitter_max_seconds=300,
        )
        for _ in range(3):
            await service.should_rate_limit(KEY_REQUESTS)
        client = redis_server.client()
        assert sorted(k.decode() for k in client.keys("*")) == sorted(EXPECTED_KEYS)
        assert [client.get(k) for k in EXPECTED_KEYS] == [b"3", b"3"]
        assert 86400 - 2 <= client.ttl(EXPECTED_KEYS[0]) < 86400 + 300
        assert 3600 - 2 <= client.ttl(EXPECTED_KEYS[1]) < 3600 + 300
        client.expire(EXPECTED_KEYS[1], 10)  # the EXPIRE is sent on every call
        await service.should_rate_limit(KEY_REQUESTS)
        assert client.ttl(EXPECTED_KEYS[1]) >= 3600 - 2
        # a probe (per-descriptor hits_addend 0) reads without changing the counter
        probe = req("messaging", d(("path", "/api/y"), addend=0))
        response = await service.should_rate_limit(probe)
        assert view(response) == [ok(5, "HOUR", 1)]
        assert client.get(EXPECTED_KEYS[1]) == b"4"
    finally:
        await store.close()


# --- 2.5 local over-limit cache and near-limit ratio ---------------------------------------------


async def test_local_cache_answers_over_limit_keys_without_the_store() -> None:
    store = Recording()
    service = make_service(compile_texts(BASIC), store, local_cache_entries=100)
    for _ in range(2):
        await service.should_rate_limit(req("b", d(("small", "u"))))
    store.ops.clear()
    response = await service.should_rate_limit(req("b", d(("small", "u")), hits=3))
    assert view(response) == [over(1, "MINUTE")]
    assert store.ops == []  # answered from the cache; the stored counter stops growing
    assert await store.read([key("b_small", "u", MINUTE_START)]) == [2]
    snapshot = service.stats.snapshot()
    assert snapshot[RL + "b.small.over_limit_with_local_cache"] == 3
    assert snapshot[RL + "b.small.over_limit"] == 4
    assert snapshot["ratelimit.localcache.hitCount"] == 1


async def test_near_limit_ratio_sets_the_near_threshold() -> None:
    service = make_service(
        compile_texts(BASIC), MemoryStore(clock=lambda: float(NOW)), near_limit_ratio=0.5
    )
    await service.should_rate_limit(req("b", d(("big", "u")), hits=7))  # threshold floor(5)
    assert service.stats.snapshot()[RL + "b.big.near_limit"] == 2


# --- 3 the /json endpoint ------------------------------------------------------------------------


async def test_json_endpoint_shape_and_status_codes() -> None:
    config = compile_texts(BASIC)
    service = make_service(config, MemoryStore(clock=lambda: float(NOW)))
    app = http_api.build_app(service, lambda: config)
    async with TestClient(TestServer(app)) as client:
        body = {
            "domain": "b",
            "descriptors": [
                {"entries": [{"key": "nothing", "value": "x"}]},
                {"entries": [{"key": "free", "value": "x"}]},
                {"entries": [{"key": "hour", "value": "x"}], "hitsAddend": 2},
            ],
        }
        reply = await client.post("/json", data=json.dumps(body))
        assert reply.status == 200
        assert await reply.json() == {
            "overallCode": "OK",
            "statuses": [
                {"code": "OK"},
                {"code": "OK", "limitRemaining": UNLIMITED_REMAINING},
                {
                    "code": "OK",
                    "currentLimit": {"requestsPerUnit": 3, "unit": "HOUR", "name": "hourly"},
                    "limitRemaining": 1,
                    "durationUntilReset": f"{_reset('HOUR')}s",
                },
            ],
        }
        snake = {
            "domain": "b",
            "hits_addend": 2,
            "descriptors": [{"entries": [{"key": "small", "value": "x"}]}],
        }
        reply = await client.post("/json", data=json.dumps(snake))
        assert reply.status == 429
        assert (await reply.json())["statuses"][0] == {
            "code": "OVER_LIMIT",
            "currentLimit": {"requestsPerUnit": 1, "unit": "MINUTE"},
            "durationUntilReset": "40s",
        }
        assert (await client.post("/json", data="{not json")).status == 400
        assert (await client.post("/json", data='{"domain": ""}')).status == 400
        empty = await client.post("/json", data='{"domain": "b"}')
        assert empty.status == 400
        assert "rate limit descriptor list must not be empty" in await empty.text()


# --- 9.10 request errors over gRPC ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (req("", d(("k", "v"))), "rate limit domain must not be empty"),
        (req("b"), "rate limit descriptor list must not be empty"),
    ],
    ids=["empty domain", "no descriptors"],
)
async def test_request_errors_are_grpc_unknown(request_: Request, message: str) -> None:
    config = compile_texts(BASIC)
    service = make_service(config, MemoryStore())
    rpc = grpc_api.RateLimitRpc(service)
    pb = grpc_api.rls_pb2.RateLimitRequest(domain=request_.domain)
    for descriptor in request_.descriptors:
        pb.descriptors.add().entries.add(
            key=descriptor.entries[0][0], value=descriptor.entries[0][1]
        )
    with pytest.raises(GrpcError) as caught:
        await rpc.should_rate_limit(pb)
    assert caught.value.code is grpc.StatusCode.UNKNOWN
    assert caught.value.message == message
    assert service.stats.snapshot()["ratelimit.service.call.should_rate_limit.service_error"] == 1
