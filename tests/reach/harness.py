"""One fresh fairdesk per run, wired to four recorded helpdesks; an observation of everything it produced, as bytes.

Two runs fed payloads that differ only in reach must produce byte-identical observations: ``reach_difference``
returns the diff when they do not (the property) and whether a ticket was made at all (so the property cannot pass
by comparing two empty results).
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, col, select
from standardwebhooks import Webhook

from fairdesk.helpdesk.base import Helpdesk
from fairdesk.helpdesk.rt import RtHelpdesk
from fairdesk.helpdesk.webhook import WebhookHelpdesk
from fairdesk.helpdesk.zammad import ZammadHelpdesk
from fairdesk.helpdesk.zendesk import ZendeskHelpdesk
from fairdesk.jobs.deliveries import FilingPolicy, deliver_due
from fairdesk.jobs.poll import poll_once
from fairdesk.jobs.replies import ReplyPolicy, send_due_replies
from fairdesk.listener.base import Adapter
from fairdesk.ticketing.db import make_engine, migrate
from fairdesk.ticketing.deliveries import bind_helpdesks
from fairdesk.ticketing.models import HelpdeskDelivery, LedgerEntry, Outbox, Ticket, TicketEntry
from tests.support import fake_classify

PUBLIC_URL = "http://127.0.0.1:8000"
TEMPLATE = "We opened {ref}: {link}"
WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
WEBHOOK_CLOCK = datetime(2030, 1, 1, tzinfo=UTC)  # the webhook's own timestamp, fixed so signatures can compare
# fairdesk's own clock (when it filed, fetched, appended) is not the payload's: those columns are left out.
CLOCK_COLUMNS = {"updated_at", "fetched_at", "filed_at", "first_response_at", "next_attempt_at", "sent_at"}
HELPDESKS = ("rt", "webhook", "zammad", "zendesk")
TOKEN = re.compile(r"/t/[A-Za-z0-9_\-]+")

# Runs share SQLAlchemy's statement cache (it is per engine, and compiling every statement again for each fresh
# database would be most of the run time) and write to memory-backed storage where there is some.
_STATEMENTS: dict[Any, Any] = {}
_SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None
_template: Path | None = None


def _template_db() -> Path:
    """A migrated SQLite file made once per test process; each run starts from a copy (fresh and fast)."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="fairdesk-reach-template-"))
        engine = make_engine(f"sqlite:///{folder / 'fairdesk.db'}")
        migrate(engine)
        engine.dispose()
        _template = folder / "fairdesk.db"
    return _template


@dataclass
class RecordedHelpdesks:
    """Every request the rt, zendesk, zammad and webhook clients send, answered as a helpdesk that files it."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, request: httpx.Request) -> httpx.Response:
        body: Any = request.content.decode()
        if request.headers.get("content-type", "").startswith("application/json") and body:
            body = json.loads(body)
        headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-") or k == "idempotency-key"}
        if "webhook-signature" in headers:
            # The signature covers fairdesk's clock (the event time): check it is valid, then compare the rest.
            signed = Webhook(WEBHOOK_SECRET).sign(headers["webhook-id"], WEBHOOK_CLOCK, request.content.decode())
            headers["webhook-signature"] = "<valid>" if headers["webhook-signature"] == signed else "<INVALID>"
        self.requests.append(
            {
                "host": request.url.host,
                "method": request.method,
                "path": request.url.path,
                "headers": headers,
                "body": body,
            }
        )
        if request.method == "GET":
            return httpx.Response(200, json={"count": 0, "results": [], "tickets": [], "items": []})
        return httpx.Response(201, json={"id": 7, "number": "10007", "ticket": {"id": 7}})

    def build(self, names: Sequence[str] = HELPDESKS) -> dict[str, Helpdesk]:
        transport = httpx.MockTransport(self.answer)
        every: dict[str, Helpdesk] = {
            "rt": RtHelpdesk("rt", url="http://rt.test", queue="General", token="t", transport=transport),
            "zendesk": ZendeskHelpdesk(
                "zendesk", base_url="http://zendesk.test", email="a@b.test", api_token="t", transport=transport
            ),
            "zammad": ZammadHelpdesk(
                "zammad", url="http://zammad.test", token="t", group="Users", customer="c@b.test", transport=transport
            ),
            "webhook": WebhookHelpdesk(
                "webhook",
                url="http://hook.test/in",
                secret=WEBHOOK_SECRET,
                events=["ticket.created", "ticket.details_added", "ticket.status_changed"],
                transport=transport,
                clock=lambda: WEBHOOK_CLOCK,
            ),
        }
        for name in set(every) - set(names):
            every.pop(name).close()
        return every


@dataclass(frozen=True)
class Observation:
    """What one run produced, as canonical JSON, and whether it opened any ticket."""

    data: bytes
    tickets: int


class Fairdesk:
    """A fresh fairdesk: a new data dir with its own migrated SQLite database and its own helpdesk recordings."""

    def __init__(self, helpdesks: Sequence[str] = HELPDESKS) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="fairdesk-reach-", dir=_SCRATCH))
        shutil.copy(_template_db(), self.data_dir / "fairdesk.db")
        self.engine = make_engine(f"sqlite:///{self.data_dir / 'fairdesk.db'}")
        self.engine.update_execution_options(compiled_cache=_STATEMENTS)
        self.recorded = RecordedHelpdesks()
        self.helpdesks = self.recorded.build(helpdesks)
        names = sorted(self.helpdesks)
        self.sessions: Callable[[], Session] = lambda: bind_helpdesks(
            Session(self.engine, expire_on_commit=False), names
        )

    def run(self, adapter: Adapter, *, polls: int = 2) -> None:
        """Poll, reply and deliver as the daemon's jobs do, until the payloads are all in."""
        for _ in range(polls):
            poll_once(adapter, classify=fake_classify, sessions=self.sessions, owner="reach")
        policy = ReplyPolicy(TEMPLATE, PUBLIC_URL)
        send_due_replies(
            {(adapter.platform, adapter.account): adapter}, sessions=self.sessions, policy=policy, owner="reach"
        )
        filing = FilingPolicy(public_url=PUBLIC_URL)
        for _ in range(2):  # file, then forward the follow-ups
            deliver_due(self.helpdesks, sessions=self.sessions, policy=filing, owner="reach")

    def observe(self, posted_replies: list[str]) -> Observation:
        with self.sessions() as session:
            tickets = _rows(session, Ticket, {"token_hash"})
            entries = _rows(session, TicketEntry, {"id", "created_at"})
            entry_times = [e.created_at.isoformat() for e in session.exec(select(TicketEntry))]
            ledger = _rows(session, LedgerEntry, {"id"})
            outbox = _rows(session, Outbox, {"id", "created_at", "claimed_by", "claimed_until", "remote_id"})
            deliveries = _rows(session, HelpdeskDelivery, {"id", "created_at", "claimed_by", "claimed_until"})
        text = json.dumps(
            {
                "tickets": tickets,
                "priorities": [t["priority"] for t in tickets],
                "timeline": entries,
                "ledger": ledger,
                "outbox": outbox,
                "replies_on_the_platform": posted_replies,
                "helpdesk_deliveries": deliveries,
                "helpdesk_requests": self.recorded.requests,
            },
            indent=1,
            sort_keys=True,
            default=str,
            ensure_ascii=False,
        )
        for number, moment in enumerate(entry_times):  # an event's time is when fairdesk appended it
            text = text.replace(moment, f"<entry {number} time>")
        return Observation(TOKEN.sub("/t/<token>", text).encode(), len(tickets))

    def close(self) -> None:
        for helpdesk in self.helpdesks.values():
            helpdesk.close()
        self.engine.dispose()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _rows(session: Session, table: Any, leave_out: set[str]) -> list[dict[str, Any]]:
    rows = session.exec(select(table).order_by(col(table.id) if hasattr(table, "id") else None))
    return [r.model_dump(exclude=leave_out | CLOCK_COLUMNS) for r in rows]


@contextmanager
def fresh_fairdesk(helpdesks: Sequence[str] = HELPDESKS) -> Iterator[Fairdesk]:
    desk = Fairdesk(helpdesks)
    try:
        yield desk
    finally:
        desk.close()


# A platform as the property sees it: given some reach, an adapter serving the scenario's posts with that reach,
# and a way to read back the replies it posted.
@dataclass
class Served:
    adapter: Adapter
    posted: Callable[[], list[str]]
    close: Callable[[], None] = lambda: None


Platform = Callable[[dict[str, Any]], Served]


def observe(platform: Platform, reach: dict[str, Any], helpdesks: Sequence[str] = HELPDESKS) -> Observation:
    """One fresh fairdesk, filing into ``helpdesks``, fed the platform's payloads carrying ``reach``."""
    served = platform(reach)
    try:
        with fresh_fairdesk(helpdesks) as desk:
            desk.run(served.adapter)
            return desk.observe([TOKEN.sub("/t/<token>", r) for r in served.posted()])
    finally:
        served.close()


def reach_difference(
    platform: Platform, reach_a: dict[str, Any], reach_b: dict[str, Any], helpdesks: Sequence[str] = HELPDESKS
) -> tuple[str, int]:
    """The diff between two runs whose payloads differ only in reach ("" when byte-identical), and the tickets made."""
    a, b = observe(platform, reach_a, helpdesks), observe(platform, reach_b, helpdesks)
    if a.data == b.data:
        return "", a.tickets
    diff = difflib.unified_diff(
        a.data.decode().splitlines(), b.data.decode().splitlines(), "reach a", "reach b", lineterm="", n=1
    )
    return "\n".join(diff), min(a.tickets, b.tickets)
