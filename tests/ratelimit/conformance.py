"""Loads the shared conformance corpus (shared/conformance/ratelimit) and runs its calls."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from meshguard.common.sources import SourceFile
from meshguard.ratelimit.config import CompileOptions, RateLimitConfig, compile_sources
from meshguard.ratelimit.model import Code, Descriptor, LimitOverride, Request, Response
from meshguard.ratelimit.service import ServiceOptions
from tests.harness.paths import CONFORMANCE

CORPUS = CONFORMANCE / "ratelimit"

_BOOL_SETTINGS = {
    "SHADOW_MODE": "shadow_mode",
    "QUOTA_MODE": "quota_mode",
    "STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT": "stop_increment_when_over_limit",
    "LIMIT_RESPONSE_HEADERS_ENABLED": "response_headers",
    "RESPONSE_DYNAMIC_METADATA": "dynamic_metadata",
}


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    cases: Mapping[str, Any]

    @property
    def valid(self) -> bool:
        return bool(self.cases["load"]["valid"])

    @property
    def settings(self) -> Mapping[str, str]:
        return self.cases.get("settings") or {}

    def sources(self) -> list[SourceFile]:
        return [
            SourceFile(str(self.path / name), (self.path / name).read_text())
            for name in self.cases["config_files"]
        ]

    def compile_options(self) -> CompileOptions:
        return CompileOptions(merge_domains=self.settings.get("MERGE_DOMAIN_CONFIG") == "true")

    def service_options(self) -> ServiceOptions:
        flags = {attr: self.settings.get(env) == "true" for env, attr in _BOOL_SETTINGS.items()}
        return ServiceOptions(expiration_jitter_max_seconds=0, **flags)

    def compile(self) -> RateLimitConfig:
        return compile_sources(self.sources(), self.compile_options())


def scenarios() -> list[Scenario]:
    return [
        Scenario(d.name, d, yaml.safe_load((d / "cases.yaml").read_text()))
        for d in sorted(CORPUS.iterdir())
        if (d / "cases.yaml").exists()
    ]


def to_request(raw: Mapping[str, Any]) -> Request:
    descriptors = []
    for d in raw.get("descriptors") or []:
        limit = d.get("limit")
        descriptors.append(
            Descriptor(
                entries=tuple((str(e["key"]), str(e["value"])) for e in d.get("entries") or []),
                limit=LimitOverride(limit["requests_per_unit"], _UNITS[limit["unit"]])
                if limit
                else None,
                hits_addend=d.get("hits_addend"),
            )
        )
    return Request(raw.get("domain", ""), tuple(descriptors), raw.get("hits_addend", 0))


_UNITS = {"SECOND": 1, "MINUTE": 2, "HOUR": 3, "DAY": 4, "MONTH": 5, "YEAR": 6, "WEEK": 7}


def status_view(response: Response) -> list[dict[str, Any]]:
    """The response statuses in the corpus' shape."""
    out = []
    for status in response.statuses:
        view: dict[str, Any] = {
            "code": status.code.name,
            "current_limit": None,
            "limit_remaining": status.limit_remaining,
        }
        if status.current_limit is not None:
            limit = {
                "requests_per_unit": status.current_limit.requests_per_unit,
                "unit": status.current_limit.unit.name,
            }
            if status.current_limit.name:
                limit["name"] = status.current_limit.name
            view["current_limit"] = limit
            view["duration_until_reset"] = status.duration_until_reset
        out.append(view)
    return out


def expected_statuses(expect: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(s) for s in expect["statuses"]]


def response_view(response: Response) -> dict[str, Any]:
    return {
        "overall_code": response.overall_code.name,
        "statuses": status_view(response),
        "response_headers_to_add": [list(h) for h in response.response_headers_to_add],
    }


_PB_UNITS = {number: name for name, number in _UNITS.items()}


def pb_view(message: Any) -> dict[str, Any]:
    """A protobuf RateLimitResponse in the corpus' shape."""
    statuses = []
    for status in message.statuses:
        view: dict[str, Any] = {
            "code": Code(status.code).name,
            "current_limit": None,
            "limit_remaining": status.limit_remaining,
        }
        if status.HasField("current_limit"):
            limit: dict[str, Any] = {
                "requests_per_unit": status.current_limit.requests_per_unit,
                "unit": _PB_UNITS[status.current_limit.unit],
            }
            if status.current_limit.name:
                limit["name"] = status.current_limit.name
            view["current_limit"] = limit
            view["duration_until_reset"] = status.duration_until_reset.seconds
        statuses.append(view)
    return {
        "overall_code": Code(message.overall_code).name,
        "statuses": statuses,
        "response_headers_to_add": [[h.key, h.value] for h in message.response_headers_to_add],
    }


StoreFactory = Callable[[Callable[[], float]], Callable[[], Awaitable[Any]]]
Call = Callable[[Any, Request], Awaitable[dict[str, Any]]]


async def run_scenario(scenario: Scenario, stores: StoreFactory, call: Call) -> None:
    """Run every sequence of ``scenario``; ``stores(clock)`` makes fresh counter stores."""
    from meshguard.ratelimit.service import RateLimitService
    from meshguard.ratelimit.stats import Stats

    config = scenario.compile()
    clock = [0.0]
    fresh = stores(lambda: clock[0])
    store = None
    for sequence in scenario.cases["sequences"]:
        clock[0] = float(sequence["now"])
        if store is None or sequence.get("fresh_backend", True):
            if store is not None:
                await store.close()
            store = await fresh()
        stats = Stats()
        service = RateLimitService(
            lambda: config, store, scenario.service_options(), stats, clock=lambda: clock[0]
        )
        for number, case in enumerate(sequence["calls"]):
            where = f"{sequence['name']} call {number}"
            expect = case["expect"]
            got = await call(service, to_request(case["request"]))
            if "error" in expect:
                assert got.get("error") == expect["error"], where
            else:
                assert "error" not in got, f"{where}: {got}"
                assert got["overall_code"] == expect["overall_code"], where
                assert got["statuses"] == expected_statuses(expect), where
                if "response_headers_to_add" in expect:
                    wanted = [[h["key"], h["value"]] for h in expect["response_headers_to_add"]]
                    assert got["response_headers_to_add"] == wanted, where
            for key, value in (expect.get("counters_after") or {}).items():
                assert (await store.read([key])) == [value], f"{where}: counter {key}"
            snapshot = stats.snapshot()
            for name, value in (expect.get("stats_after") or {}).items():
                assert snapshot.get(name, 0) == value, f"{where}: stat {name}"
    if store is not None:
        await store.close()
