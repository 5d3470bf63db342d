"""The daemon's job boundary: each job's recent outcome (for /healthz), and a loop that can be woken early."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fairdesk.ticketing.models import utcnow

logger = logging.getLogger(__name__)

FAILING_AFTER = 2  # consecutive failures before a job counts as failing (one blip is not an outage)


@dataclass
class JobState:
    name: str
    runs: int = 0
    failures: int = 0  # consecutive
    last_ok_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def failing(self) -> bool:
        return self.failures >= FAILING_AFTER


class JobBoard:
    """Runs jobs at the one boundary where any exception is caught, and remembers how each one went.

    Kept in memory on purpose: it must still tell the truth when the database is what fails."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobState] = {}

    def run(self, name: str, fn: Callable[[], object]) -> object:
        try:
            result = fn()
        except Exception as exc:
            self._failed(name, exc)
            return None
        with self._lock:
            state = self._jobs.setdefault(name, JobState(name))
            recovered = state.failures > 0
            state.runs += 1
            state.failures = 0
            state.last_ok_at = utcnow()
        if recovered:
            logger.info("%s recovered", name)
        return result

    def _failed(self, name: str, exc: Exception) -> None:
        message = (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0][:500]
        with self._lock:
            state = self._jobs.setdefault(name, JobState(name))
            state.runs += 1
            state.failures += 1
            first = state.failures == 1 or message != state.last_error
            state.last_error = message
            state.last_error_at = utcnow()
        # Log the change, not every repeat: a failing job is visible in /healthz until it recovers.
        if first:
            logger.exception("%s failed", name)
        else:
            logger.debug("%s failed again: %s", name, message)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "job": s.name,
                    "failing": s.failing,
                    "consecutive_failures": s.failures,
                    "last_ok_at": s.last_ok_at,
                    "last_error": s.last_error,
                    "last_error_at": s.last_error_at,
                }
                for s in sorted(self._jobs.values(), key=lambda s: s.name)
            ]


class WakeableLoop:
    """Runs ``fn`` every ``interval`` seconds, or at once when woken; one run at a time, in its own thread.

    A wake during a run makes another run follow it immediately, so nothing queued meanwhile waits a full interval."""

    def __init__(self, name: str, fn: Callable[[], object], interval: float) -> None:
        self.name = name
        self._fn = fn
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"fairdesk-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end and wait for the run in progress to finish."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._fn()
            self._wake.wait(self._interval)


__all__ = ["FAILING_AFTER", "JobBoard", "JobState", "WakeableLoop"]
