"""Pytest fixtures for a real Request Tracker 5 started by scripts/rt, and an SMTP server that feeds it mail."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "rt"
KEEP_ENV = "FAIRDESK_RT_KEEP"  # leave an RT this session started running afterwards
INSTALL_TIMEOUT = 900  # a cold install downloads ~200 Debian packages
START_TIMEOUT = 180
RUN_ID = secrets.token_hex(3)  # queue names are unique per test run, so a long-running RT can be reused
_SERIAL = itertools.count(1)
CONTENT_TYPES = ("Create", "Correspond", "Comment")  # transactions that carry a message


def _rt(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/rt {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


class RtPeer:
    """A running Request Tracker 5 and the means to look inside it as an RT admin would (REST2 with root's token).

    ``url`` is the base URL (no ``/REST/2.0``); ``token`` is the bot user ``fairdesk``'s REST2 token, which is what
    the code under test should use; ``root_token`` is the superuser's. Tickets come back as plain dicts::

        queue = rt_peer.new_queue()
        ticket_id = ...  # filed by the code under test with rt_peer.token
        [t] = rt_peer.tickets(queue)  # {"id": 7, "Subject": ..., "Status": "new", "Requestors": ["bob@x.org"],
                                      #  "CustomFields": {"External ID": ["x:1"]}, "Created": "2026-...Z", ...}
        rt_peer.set_status(t["id"], "resolved")
        [tx["Type"] for tx in rt_peer.history(t["id"])]  # ["Create", "Status", ...]
    """

    def __init__(self, url: str, token: str, root_token: str, port: int) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.root_token = root_token
        self.port = port
        self.http = httpx.Client(
            base_url=f"{self.url}/REST/2.0",
            headers={"Authorization": f"token {root_token}"},
            timeout=30.0,
        )

    def close(self) -> None:
        self.http.close()

    # queues and custom fields (RT 5.0's REST2 cannot grant rights or apply custom fields: scripts/rt does it)

    def new_queue(self, name: str | None = None, *, rights: bool = True) -> str:
        """A new queue (``t<run>-<n>`` unless named) where the bot may create, see, modify, comment, correspond and
        reply, and mail (Everyone) may create tickets and reply. ``rights=False``: a queue nobody but root may use."""
        name = name or f"t{RUN_ID}-{next(_SERIAL)}"
        _rt("queue", name, *([] if rights else ["--no-rights"]))
        return name

    def add_custom_field(self, queue: str, name: str) -> None:
        """A single-value free-text ticket custom field ``name`` (made once, shared by name), applied to ``queue``."""
        _rt("customfield", queue, name)

    # tickets

    def tickets(self, queue: str) -> list[dict[str, Any]]:
        """Every ticket in ``queue``, oldest first, as :meth:`ticket` returns them (one search, no paging limit)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self._get(
                "/tickets",
                query=f"Queue = '{queue}'",
                fields="Subject,Status,Requestor,CustomFields,Created,Queue,Owner",
                orderby="id",
                order="ASC",
                per_page=100,
                page=page,
            )
            items += data["items"]
            if page >= int(data.get("pages") or 1):
                return [self._normalise(item) for item in items]
            page += 1

    def ticket(self, ticket_id: int | str) -> dict[str, Any]:
        """One ticket: ``id`` (int), ``Subject``, ``Status``, ``Queue`` (name), ``Owner``, ``Requestors`` (emails),
        ``CustomFields`` ({name: [values]}, only fields applied to its queue), ``Created``; ``raw`` is REST2's."""
        return self._normalise(self._get(f"/ticket/{ticket_id}"))

    def history(self, ticket_id: int | str) -> list[dict[str, Any]]:
        """The ticket's transactions, oldest first: ``id``, ``Type`` (Create, Correspond, Comment, Status,
        CustomField, EmailRecord, ...), ``Field``, ``OldValue``, ``NewValue``, ``Creator`` (user name), ``Created``,
        and ``Content``: the text of the message the transaction carries (decoded; "" when it has none)."""
        found = []
        page = 1
        while True:
            data = self._get(
                f"/ticket/{ticket_id}/history",
                fields="Type,Field,OldValue,NewValue,Creator,Created",
                per_page=100,
                page=page,
            )
            found += data["items"]
            if page >= int(data.get("pages") or 1):
                break
            page += 1
        return [
            {
                "id": int(tx["id"]),
                "Type": tx["Type"],
                "Field": tx.get("Field") or "",
                "OldValue": tx.get("OldValue") or "",
                "NewValue": tx.get("NewValue") or "",
                "Creator": (tx.get("Creator") or {}).get("id", ""),
                "Created": tx.get("Created", ""),
                "Content": self._content(tx["id"]) if tx["Type"] in CONTENT_TYPES else "",
            }
            for tx in found
        ]

    def set_status(self, ticket_id: int | str, status: str) -> None:
        """Change the status as an agent would (root); raises if RT did not apply it."""
        res = self.http.put(f"/ticket/{ticket_id}", json={"Status": status})
        res.raise_for_status()
        now = self.ticket(ticket_id)["Status"]
        if now != status:
            raise RuntimeError(f"RT kept ticket {ticket_id} at {now!r}: {res.json()}")

    # the server

    def down(self) -> None:
        """Stop the RT server process (an outage); the database is kept."""
        _rt("stop")

    def up(self) -> None:
        """Start it again on the same port, with the same data and tokens."""
        _rt("start", "--port", str(self.port), timeout=START_TIMEOUT)

    # mail

    def mailgate(self, raw: bytes, queue: str) -> int | None:
        """Deliver ``raw`` (an RFC 822 message) as RT's mail gateway would receive it for ``queue``
        (``rt-mailgate --action correspond``). Returns the id of the ticket it created or added to, or None when RT
        refused it: rt-mailgate's exit status alone does not say (it exits 0 when RT declines for lack of rights)."""
        done = subprocess.run(
            ["rt-mailgate", "--url", self.url, "--queue", queue, "--action", "correspond"],
            input=raw,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            return None
        message = email.message_from_bytes(raw, policy=email.policy.default)
        message_id = str(message.get("Message-ID", "")).strip().strip("<>")
        if message_id:
            return self._ticket_by_message_id(message_id)
        subject = str(message.get("Subject", ""))
        hits = [t["id"] for t in self.tickets(queue) if t["Subject"] == subject]
        return hits[-1] if hits else None

    def sent_mail(self) -> list[bytes]:
        """RT's outgoing mail (auto-replies, notifications), oldest first; scripts/rt keeps it as files, never sent."""
        mail_dir = Path(_rt("status").split("state=", 1)[1].split()[0]) / "mail"
        return [path.read_bytes() for path in sorted(mail_dir.glob("*.eml"))]

    # plumbing

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        res = self.http.get(path, params=params)
        res.raise_for_status()
        return res.json()

    def _ticket_by_message_id(self, message_id: str) -> int | None:
        res = self.http.post(
            "/attachments", params={"fields": "TransactionId"}, json=[{"field": "MessageId", "value": message_id}]
        )
        res.raise_for_status()
        for item in res.json()["items"]:
            tx = self._get(f"/transaction/{item['TransactionId']}")
            if tx["Object"]["type"] == "ticket":
                return int(tx["Object"]["id"])
        return None

    def _content(self, transaction_id: str) -> str:
        items = self._get(f"/transaction/{transaction_id}/attachments", fields="ContentType,Content", per_page=100)
        texts = [a.get("Content") or "" for a in items["items"] if a.get("ContentType", "").startswith("text/plain")]
        return "\n".join(texts)

    def _normalise(self, raw: dict[str, Any]) -> dict[str, Any]:
        queue = raw.get("Queue") or {}
        return {
            "id": int(raw["id"]),
            "Subject": raw.get("Subject", ""),
            "Status": raw.get("Status", ""),
            "Queue": self._queue_name(queue["id"]) if queue else "",
            "Owner": (raw.get("Owner") or {}).get("id", ""),
            "Requestors": [self._email(user["id"]) for user in raw.get("Requestor") or []],
            "CustomFields": {cf["name"]: list(cf.get("values") or []) for cf in raw.get("CustomFields") or []},
            "Created": raw.get("Created", ""),
            "raw": raw,
        }

    def _queue_name(self, queue_id: str) -> str:
        return str(self._get(f"/queue/{queue_id}")["Name"])

    def _email(self, user: str) -> str:
        # Users RT made from an address are named by it; others (root, fairdesk) have it as a field.
        return user if "@" in user else str(self._get(f"/user/{user}").get("EmailAddress") or user)


def _status_url() -> str | None:
    done = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return done.stdout.split("url=", 1)[1].split()[0]


@pytest.fixture(scope="session")
def rt_peer() -> Iterator[RtPeer]:
    """A real Request Tracker 5 (scripts/rt install + start on a free port), stopped at the end of the session.

    An RT that is already running (``scripts/rt start``) is reused and left running; FAIRDESK_RT_KEEP keeps one
    this fixture started. Example::

        def test_x(rt_peer):
            queue = rt_peer.new_queue()
            httpx.post(f"{rt_peer.url}/REST/2.0/ticket", headers={"Authorization": f"token {rt_peer.token}"},
                       json={"Queue": queue, "Subject": "hi", "Content": "body"})
            assert rt_peer.tickets(queue)[0]["Subject"] == "hi"
    """
    _rt("install", timeout=INSTALL_TIMEOUT)
    url = _status_url()
    started = url is None
    if started:
        _rt("start", "--port", str(free_port()), timeout=START_TIMEOUT)
        url = _status_url()
    assert url is not None
    peer = RtPeer(url, _rt("token").strip(), _rt("token", "root").strip(), int(url.rsplit(":", 1)[1]))
    try:
        yield peer
    finally:
        peer.close()
        if started and not os.environ.get(KEEP_ENV):
            _rt("stop")


@dataclass
class RtSmtp:
    """A real SMTP server on 127.0.0.1 that hands every message to RT through ``rt_peer.mailgate``.

    The RT queue is ``queue`` when set, else each recipient address's local part. ``received`` holds
    (message bytes, ticket id or None) per delivery, in order."""

    host: str
    port: int
    queue: str | None = None
    received: list[tuple[bytes, int | None]] = field(default_factory=list)


class _MailgateHandler:
    def __init__(self, peer: RtPeer, smtp: RtSmtp) -> None:
        self.peer = peer
        self.smtp = smtp

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        queues = [self.smtp.queue] if self.smtp.queue else [str(rcpt).split("@", 1)[0] for rcpt in envelope.rcpt_tos]
        refused = []
        for queue in dict.fromkeys(queues):
            ticket_id = self.peer.mailgate(raw, queue)
            self.smtp.received.append((raw, ticket_id))
            if ticket_id is None:
                refused.append(queue)
        if refused:
            return f"550 RT did not file the message in {', '.join(refused)}"
        return "250 Message accepted for delivery"


@pytest.fixture
def rt_smtp(rt_peer: RtPeer) -> Iterator[RtSmtp]:
    """An aiosmtpd server on a free loopback port whose messages become RT tickets (via rt-mailgate).

    Example::

        rt_smtp.queue = rt_peer.new_queue()   # or address the mail to <queue>@anything
        with smtplib.SMTP(rt_smtp.host, rt_smtp.port) as s: s.send_message(msg)
        [(raw, ticket_id)] = rt_smtp.received
    """
    smtp = RtSmtp(host="127.0.0.1", port=free_port())
    controller = Controller(_MailgateHandler(rt_peer, smtp), hostname=smtp.host, port=smtp.port)
    controller.start()
    try:
        yield smtp
    finally:
        controller.stop()
