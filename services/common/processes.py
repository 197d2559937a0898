"""Ending child processes the same way everywhere: a signal, a grace period, then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def terminate(
    process: subprocess.Popen[Any] | None,
    timeout: float = 5.0,
    sig: signal.Signals = signal.SIGTERM,
) -> None:
    """Send ``sig`` and wait up to ``timeout`` seconds, then SIGKILL. A process that already
    exited (or None) is left alone, so callers can stop idempotently."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
