"""The benchmark harness reads wrk right and keeps other benchmarks' results intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from benchmarks import harness


@pytest.mark.parametrize(
    ("text", "ms"), [("512.00us", 0.512), ("1.50ms", 1.5), ("2.00s", 2000.0), ("1.00m", 60000.0)]
)
def test_wrk_durations(text: str, ms: float) -> None:
    assert harness._ms(text) == pytest.approx(ms)


def test_sections_are_replaced_in_place(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    harness.write_section("authz", "A1", results)
    harness.write_section("ratelimit", "R1", results)
    harness.write_section("authz", "A2", results)
    text = results.read_text()
    assert "A1" not in text and "A2" in text and "R1" in text
    assert text.index("A2") < text.index("R1"), "a section keeps its place"


def test_table_formats_numbers() -> None:
    assert harness.table(["a", "b"], [["x", 1234.5], ["y", 0.25]]).splitlines() == [
        "| a | b |",
        "|---|---|",
        "| x | 1,234 |",
        "| y | 0.25 |",
    ]


async def test_fixed_rate_offers_the_rate_and_counts_statuses() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=429 if request.path == "/limited" else 200, text="x")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        ok = await harness.fixed_rate("ok", "127.0.0.1", port, rate=200, seconds=0.5)
        limited = await harness.fixed_rate(
            "limited", "127.0.0.1", port, "/limited", rate=200, seconds=0.25, connections=4
        )
    finally:
        await runner.cleanup()
    assert ok.requests == 100 and ok.non_2xx == 0 and ok.errors == 0
    assert limited.requests == 50 and limited.non_2xx == 50
    assert ok.seconds >= 0.45, "an open-loop client keeps to the schedule"


def test_ratio_lines_skip_variants_not_run() -> None:
    lines = harness.ratio_lines(
        {16: {"c": 300.0, "e": 200.0}, 64: {"c": 100.0, "e": 50.0, "b": 400.0}},
        (("c", "e"), ("c", "b")),
    )
    assert lines == ["- 16 connections: c/e = 1.50", "- 64 connections: c/e = 2.00, c/b = 0.25"]
