"""Every scenario of the shared conformance corpus against the service on the memory store."""

from __future__ import annotations

import pytest

from meshguard.common.findings import FindingsError
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.model import RequestError
from meshguard.ratelimit.service import RateLimitService
from meshguard.ratelimit.stats import Stats
from tests.ratelimit.conformance import (
    Scenario,
    expected_statuses,
    scenarios,
    status_view,
    to_request,
)

ALL = scenarios()
VALID = [s for s in ALL if s.valid]
INVALID = [s for s in ALL if not s.valid]


def test_corpus_is_present() -> None:
    assert len(VALID) >= 21 and len(INVALID) >= 19


@pytest.mark.parametrize("scenario", INVALID, ids=lambda s: s.name)
def test_invalid_config_is_rejected_with_the_reference_message(scenario: Scenario) -> None:
    with pytest.raises(FindingsError) as caught:
        scenario.compile()
    messages = [f.message for f in caught.value.findings]
    assert any(scenario.cases["load"]["message_contains"] in m for m in messages), messages


@pytest.mark.parametrize("scenario", VALID, ids=lambda s: s.name)
async def test_valid_scenario_on_memory_store(scenario: Scenario) -> None:
    config = scenario.compile()
    clock = [0.0]
    store = MemoryStore(clock=lambda: clock[0])
    for sequence in scenario.cases["sequences"]:
        clock[0] = float(sequence["now"])
        if sequence.get("fresh_backend", True):
            store = MemoryStore(clock=lambda: clock[0])
        stats = Stats()
        service = RateLimitService(
            lambda: config, store, scenario.service_options(), stats, clock=lambda: clock[0]
        )
        for number, call in enumerate(sequence["calls"]):
            where = f"{sequence['name']} call {number}"
            expect = call["expect"]
            request = to_request(call["request"])
            if "error" in expect:
                with pytest.raises(RequestError) as caught:
                    await service.should_rate_limit(request)
                assert str(caught.value) == expect["error"]["message"], where
            else:
                response = await service.should_rate_limit(request)
                assert response.overall_code.name == expect["overall_code"], where
                assert status_view(response) == expected_statuses(expect), where
                if "response_headers_to_add" in expect:
                    wanted = [(h["key"], h["value"]) for h in expect["response_headers_to_add"]]
                    assert list(response.response_headers_to_add) == wanted, where
            for key, value in (expect.get("counters_after") or {}).items():
                assert (await store.read([key])) == [value], f"{where}: counter {key}"
            snapshot = stats.snapshot()
            for name, value in (expect.get("stats_after") or {}).items():
                assert snapshot.get(name, 0) == value, f"{where}: stat {name}"
