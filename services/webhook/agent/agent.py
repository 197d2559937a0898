"""The agent loop: obtain an SVID, publish it for Envoy, renew before it expires.

State is exposed for the health endpoint: the current SVID (None until the first one is
written) and the last error. A failed renewal keeps the current files, which stay valid until
their own expiry, and retries with backoff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from meshguard.webhook.agent import schedule, sds
from meshguard.webhook.agent.caclient import CaEndpoint, CaRefused, fetch_svid
from meshguard.webhook.agent.identity import Svid

log = logging.getLogger(__name__)

Fetch = Callable[[str], Awaitable[tuple[Svid, str]]]


@dataclasses.dataclass(frozen=True, slots=True)
class AgentConfig:
    ca: CaEndpoint
    token_file: Path
    output_dir: Path
    ttl_seconds: int = 0  # 0: the CA's default
    renew_ratio: float = 0.5
    renew_jitter: float = 0.05


class Agent:
    def __init__(self, config: AgentConfig, fetch: Fetch | None = None) -> None:
        self.config = config
        self.svid: Svid | None = None
        self.last_error: str | None = None
        self.renewals = 0
        self._fetch = fetch or self._fetch_from_ca
        self.first_svid = asyncio.Event()
        self._received_at = datetime.datetime.now(datetime.UTC)

    def ready(self, now: datetime.datetime | None = None) -> bool:
        now = now or datetime.datetime.now(datetime.UTC)
        return self.svid is not None and self.svid.not_before <= now < self.svid.not_after

    async def run(self) -> None:
        """Run until cancelled."""
        sds.write_sds_resources(self.config.output_dir)
        while True:
            await self._obtain()
            assert self.svid is not None
            # Lifetime counts from receipt: the CA back-dates notBefore for clock skew, which
            # would make short-lived certificates look half-used on arrival.
            renew_at = schedule.renewal_time(
                self._received_at,
                self.svid.not_after,
                ratio=self.config.renew_ratio,
                jitter=self.config.renew_jitter,
            )
            delay = (renew_at - datetime.datetime.now(datetime.UTC)).total_seconds()
            await asyncio.sleep(max(delay, 0.0))

    async def _obtain(self) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                token = self.config.token_file.read_text().strip()
                svid, root_bundle = await self._fetch(token)
            except (CaRefused, OSError, ValueError) as exc:
                self.last_error = str(exc)
                delay = schedule.backoff(attempt)
                if self.svid is not None:
                    remaining = (
                        self.svid.not_after - datetime.datetime.now(datetime.UTC)
                    ).total_seconds()
                    delay = min(delay, max(remaining / 4, 0.05))
                log.warning(
                    "certificate request failed; retrying",
                    extra={"error": str(exc), "attempt": attempt, "retry_in": round(delay, 3)},
                )
                await asyncio.sleep(delay)
                continue
            sds.write_svid(self.config.output_dir, svid, root_bundle)
            if self.svid is not None:
                self.renewals += 1
            self.svid, self.last_error = svid, None
            self._received_at = max(svid.not_before, datetime.datetime.now(datetime.UTC))
            self.first_svid.set()
            log.info(
                "certificate written",
                extra={"spiffe_id": svid.spiffe_id, "not_after": svid.not_after.isoformat()},
            )
            return

    async def _fetch_from_ca(self, token: str) -> tuple[Svid, str]:
        return await fetch_svid(self.config.ca, token, self.config.ttl_seconds)
