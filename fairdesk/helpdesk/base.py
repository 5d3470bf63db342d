"""The helpdesk contract: what a filed ticket carries (no reach, by construction), the interface, the errors.

Errors, translated where each client meets its transport::

    HelpdeskError
    ├── Unavailable(retry_after)   down, timed out, 5xx, 429: try again later; the ticket is never dropped
    └── Refused                    a permanent refusal (403, 422, unknown queue): recorded with the helpdesk's reason
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


class HelpdeskError(Exception):
    """Anything a helpdesk call can fail with."""


class Unavailable(HelpdeskError):
    """The helpdesk could not be reached or asked us to wait; retry after ``retry_after`` seconds (None: back off)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refused(HelpdeskError):
    """The helpdesk refused for good (bad token, no rights, unknown queue, invalid ticket)."""


@dataclass(frozen=True, slots=True)
class Filing:
    """Everything a helpdesk ticket is made from. It has no field that could hold reach (followers, verification,
    metrics): priority comes from the content rule, like every other ticket's."""

    ref: str  # the fairdesk reference, e.g. FD-000123; searchable in every helpdesk
    subject: str
    text: str  # the post (or web form) as the customer wrote it
    channel: str  # social, web, email
    platform: str | None
    post_url: str | None
    customer: str  # the handle, or a pseudonym while blind triage is on
    label: str | None
    score: float | None
    severity: int | None
    model_version: str | None
    triage_reason: str | None
    category: str | None
    priority: int  # 1 (most urgent) .. 4, from the content only
    created_at: datetime
    agent_url: str  # the ticket in fairdesk's own agent view
    requester_email: str | None = None  # only an address the customer gave, with consent

    @property
    def title(self) -> str:
        return f"[{self.ref}] {self.subject}"

    def describe(self) -> str:
        """The plain-text body every kind files: the post, where it came from, and why fairdesk filed it."""
        lines = [self.text, "", "—"]
        if self.platform:
            lines.append(f"Posted on {self.platform} by {self.customer}: {self.post_url or '(no link)'}")
        else:
            lines.append(f"Channel: {self.channel}, from {self.customer}")
        why = f"Filed by fairdesk as {self.label or 'unlabelled'}"
        if self.score is not None:
            why += f" (score {self.score:.2f}"
            why += f", severity {self.severity})" if self.severity is not None else ")"
        lines.append(f"{why}; model {self.model_version or 'n/a'}; priority {self.priority} of 4 (content only)")
        if self.triage_reason:
            lines.append(f"Needs human triage: {self.triage_reason}")
        if self.category:
            lines.append(f"Category: {self.category}")
        lines.append(f"fairdesk reference {self.ref}: {self.agent_url}")
        return "\n".join(lines)


class EventKind(StrEnum):
    FOLLOWUP = "followup"  # the customer posted again in the thread
    DETAILS = "details"  # the customer added details (and maybe an email) on the link page
    STATUS = "status"  # the ticket's status changed in fairdesk


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a filed ticket after it was filed; ``key`` is stable across retries."""

    key: str  # e.g. FD-000123/e42 (the timeline entry it comes from)
    kind: EventKind
    text: str
    at: datetime
    email: str | None = None  # DETAILS: the address the customer consented to be contacted at
    status: str | None = None  # STATUS: the new fairdesk status


@runtime_checkable
class Helpdesk(Protocol):
    """One configured helpdesk. Calls are synchronous and bounded by timeouts; failures raise HelpdeskError.

    - ``create`` files the ticket and returns the helpdesk's id for it. It is not idempotent on every kind, so the
      delivery job calls ``find`` before any second try that may follow a create whose outcome is unknown.
    - ``find`` returns the id of the ticket already filed for ``filing.ref``, or None; kinds that cannot be asked
      make their sends recognisable instead (a stable Message-ID, a stable webhook-id) and return None.
    - ``add`` adds an event to the filed ticket.
    - ``statuses`` reads the helpdesk's status of filed tickets, mapped to fairdesk's public statuses
      (new/open/pending/solved/closed); kinds that cannot be read return {}.
    """

    name: str
    kind: str
    reads_status: bool

    def create(self, filing: Filing) -> str: ...

    def find(self, filing: Filing) -> str | None: ...

    def add(self, remote_id: str, filing: Filing, event: Event) -> None: ...

    def statuses(self, remote_ids: list[str]) -> dict[str, str]: ...

    def close(self) -> None: ...


@runtime_checkable
class Checkable(Protocol):
    """Helpdesks that can prove, without filing anything, that they answer and accept fairdesk's credentials.

    ``check()`` returns one line saying what it proved, or raises HelpdeskError (`fairdesk doctor` prints either)."""

    def check(self) -> str: ...
