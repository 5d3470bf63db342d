"""Helpers shared by the helpdesk kinds' end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fairdesk.app import Daemon
from fairdesk.helpdesk.base import Filing, Helpdesk
from tests.support import SimulatedCrash


def drain(daemon: Daemon) -> None:
    """Poll every account until the platforms have nothing new."""
    while any(r.new for r in daemon.poll_all()):
        pass


class KilledOnCreate:
    """A real helpdesk client whose ``nth`` create dies like a SIGKILLed daemon (``SimulatedCrash``).

    ``at_kill(filing)`` runs first, to choose the moment: do nothing (killed before the helpdesk heard of it), call the
    real create (killed after the helpdesk filed it), or lose its answer; it may raise instead of dying. Every other
    call goes to the real client.

    Example: ``deliver_due({"rt": KilledOnCreate(real, at_kill=real.create)}, ...)``
    """

    def __init__(self, real: Helpdesk, *, nth: int = 3, at_kill: Callable[[Filing], Any] | None = None) -> None:
        self.real = real
        self.name, self.kind, self.reads_status = real.name, real.kind, real.reads_status
        self.nth = nth
        self.at_kill = at_kill
        self.calls = 0

    def create(self, filing: Filing) -> str:
        self.calls += 1
        if self.calls == self.nth:
            if self.at_kill is not None:
                self.at_kill(filing)
            raise SimulatedCrash(f"SIGKILL at create #{self.nth}")
        return self.real.create(filing)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.real, attr)
