"""Config store: watch files, compile them into an immutable snapshot, swap it atomically.

A change on disk is parsed, validated and compiled off to the side; only a snapshot that
compiled cleanly replaces the active one. A rejected set is logged with every finding and
counted, and the last good snapshot keeps serving. Readers just take ``store.current``: the
swap is a single reference assignment, so the request path needs no lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge

from meshguard.common import sources
from meshguard.common.findings import FindingsError, error
from meshguard.common.sources import SourceFile

T = TypeVar("T")
Compiler = Callable[[list[SourceFile]], T]

log = logging.getLogger("meshguard.config")

LOAD_ERRORS = Counter(
    "meshguard_config_load_errors_total",
    "Config loads rejected because of errors (the last good snapshot stayed active).",
    ["store"],
)
LOAD_SUCCESS = Counter(
    "meshguard_config_loads_total", "Config loads that became the active snapshot.", ["store"]
)
LAST_SUCCESS = Gauge(
    "meshguard_config_last_success_timestamp_seconds",
    "Unix time of the last config load that became active.",
    ["store"],
)
ACTIVE_VERSION = Gauge(
    "meshguard_config_active_version_info",
    "Always 1; the labels name the active snapshot version.",
    ["store", "version"],
)


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot(Generic[T]):
    """A compiled config and what it was compiled from."""

    value: T
    version: str
    files: tuple[str, ...]
    loaded_at: float


class ConfigStore(Generic[T]):
    """Holds the active snapshot compiled from ``paths`` and swaps in changes that compile."""

    def __init__(
        self,
        name: str,
        paths: Sequence[str | Path],
        compile: Compiler[T],
        *,
        suffixes: Sequence[str] | None = sources.YAML_SUFFIXES,
        poll_interval: float = 0.25,
    ) -> None:
        self.name = name
        self.paths = tuple(paths)
        self._compile = compile
        self._suffixes = suffixes
        self.poll_interval = poll_interval
        self._current: Snapshot[T] | None = None
        self._fingerprint: str | None = None
        self._listeners: list[Callable[[Snapshot[T]], None]] = []

    @property
    def current(self) -> Snapshot[T]:
        if self._current is None:
            raise RuntimeError(f"config store {self.name!r} has not loaded yet")
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def on_swap(self, listener: Callable[[Snapshot[T]], None]) -> None:
        """Call ``listener`` with every new active snapshot (for caches keyed on the config)."""
        self._listeners.append(listener)

    def load(self) -> Snapshot[T]:
        """First load: errors propagate (FindingsError) so a service refuses to start on them."""
        self._fingerprint = sources.fingerprint(self.paths, self._suffixes)
        snapshot = self._build()
        self._activate(snapshot)
        return snapshot

    def reload_if_changed(self) -> bool:
        """Reload when the files changed; True when a new snapshot became active."""
        fingerprint = sources.fingerprint(self.paths, self._suffixes)
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        try:
            snapshot = self._build()
        except FindingsError as exc:
            self._reject([str(f) for f in exc.findings])
            return False
        except Exception as exc:  # a compiler bug must not stop the watcher or the service
            log.exception("config compiler failed", extra={"store": self.name})
            self._reject([f"internal error: {exc!r}"])
            return False
        if self._current is not None and snapshot.version == self._current.version:
            return False
        self._activate(snapshot)
        return True

    def _reject(self, findings: list[str]) -> None:
        LOAD_ERRORS.labels(self.name).inc()
        log.error(
            "config rejected; keeping the last good snapshot",
            extra={
                "store": self.name,
                "active_version": self._current.version if self._current else None,
                "findings": findings,
            },
        )

    async def watch(self) -> None:
        """Poll for changes until cancelled. Polling resolved stat data catches every way a
        file can change, including the ConfigMap ``..data`` symlink swap."""
        while True:
            await asyncio.sleep(self.poll_interval)
            self.reload_if_changed()

    def _build(self) -> Snapshot[T]:
        try:
            files = sources.read(sources.discover(self.paths, self._suffixes))
        except (OSError, UnicodeDecodeError) as exc:
            raise FindingsError([error("", f"cannot read config: {exc}")]) from exc
        value = self._compile(files)
        return Snapshot(
            value=value,
            version=sources.content_version(files),
            files=tuple(f.path for f in files),
            loaded_at=time.time(),
        )

    def _activate(self, snapshot: Snapshot[T]) -> None:
        previous = self._current
        self._current = snapshot
        if previous is not None:
            ACTIVE_VERSION.remove(self.name, previous.version)
        ACTIVE_VERSION.labels(self.name, snapshot.version).set(1)
        LAST_SUCCESS.labels(self.name).set(snapshot.loaded_at)
        LOAD_SUCCESS.labels(self.name).inc()
        log.info(
            "config active",
            extra={"store": self.name, "version": snapshot.version, "files": len(snapshot.files)},
        )
        for listener in self._listeners:
            listener(snapshot)

    def describe(self) -> dict[str, object]:
        """What ``/config`` shows for this store."""
        if self._current is None:
            return {"name": self.name, "loaded": False}
        return {
            "name": self.name,
            "loaded": True,
            "version": self._current.version,
            "files": list(self._current.files),
            "loaded_at": self._current.loaded_at,
        }
