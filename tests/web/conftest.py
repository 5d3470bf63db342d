"""Fixtures for the web pages: a served daemon with tickets from every channel, an agent, and a real SMTP sink."""

from __future__ import annotations

import email
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from bs4 import BeautifulSoup
from fastapi import FastAPI
from sqlmodel import select

from fairdesk.app import Daemon, build
from fairdesk.config.settings import MailSettings, Settings
from fairdesk.ticketing.agents import add_agent
from fairdesk.ticketing.db import make_engine, transaction
from fairdesk.ticketing.models import Ticket
from fairdesk.ticketing.web.app import server_config
from tests.support import FakeAdapter, fake_classify, free_port, mention

LINK = re.compile(r"/t/([A-Za-z0-9_-]{22,})")
AGENT, PASSWORD = "alex", "correct horse battery"
OTHER_AGENT, OTHER_PASSWORD = "kim", "another long password"
# Posts from the fake platform, recent so that the dashboard shows them. Handles are deliberately memorable.
POSTS = {
    "1": ("famous_person", "@brand my router is broken again, internet down since Monday"),
    "2": ("plain_user", "@brand charged twice on my bill, I want a refund"),
    "3": ("night_owl", "@brand parcel never arrived, tracking still says waiting"),
    "4": ("scripted", '@brand <script>window.pwned=1</script><img src=x onerror="window.pwned=2"> app broken'),
}


class SmtpSink:
    """An aiosmtpd handler that keeps what it receives and refuses the addresses in ``refuse``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    """A real SMTP server on loopback (aiosmtpd), for email replies.

    Example: ``sink, port = smtp; ...; assert sink.messages[0]["To"] == "pat@example.com"``
    """
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


class WebServer:
    """The daemon's web app on a real loopback socket, configured as `fairdesk run` serves it (uvicorn in a thread)."""

    def __init__(self, app: FastAPI, port: int) -> None:
        config = server_config(app, "127.0.0.1", port)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("web server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Site:
    """A served daemon: ``base`` URL, the fake platform's adapter, and helpers to act as customer or agent."""

    daemon: Daemon
    base: str
    adapter: FakeAdapter
    sink: SmtpSink
    tokens: dict[str, str] = field(default_factory=dict)  # post id -> link token from the public reply

    def ticket(self, post_id: str) -> Ticket:
        with transaction(self.daemon.sessions) as session:
            return session.exec(select(Ticket).where(Ticket.post_id == post_id)).one()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=True)

    def login(self, client: httpx.Client, name: str = AGENT, password: str = PASSWORD) -> httpx.Response:
        page = client.get("/agent/login")
        return client.post("/agent/login", data={"csrf": csrf_of(page.text), "name": name, "password": password})


def csrf_of(html: str) -> str:
    field_ = BeautifulSoup(html, "html.parser").find("input", {"name": "csrf"})
    assert field_ is not None, "no CSRF field on the page"
    return str(field_["value"])


def make_site(tmp_path: Path, db_url: str, smtp_port: int, *, public_url: str = "http://127.0.0.1:8000") -> Daemon:
    now = datetime.now(UTC)
    adapter = FakeAdapter(
        mentions=[
            mention(pid, text, author_handle=handle, created_at=now - timedelta(hours=30 - int(pid)))
            for pid, (handle, text) in POSTS.items()
        ]
    )
    settings = Settings(
        data_dir=tmp_path / "data",
        public_url=public_url,
        mail=MailSettings(
            smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_security="none", from_address="support@fairdesk.test"
        ),
    )
    daemon = build(settings, adapters={("fake", "brand"): adapter}, classify=fake_classify, engine=make_engine(db_url))
    with transaction(daemon.sessions) as session:
        add_agent(session=session, name=AGENT, password=PASSWORD)
        add_agent(session=session, name=OTHER_AGENT, password=OTHER_PASSWORD)
    daemon.poll_all()
    while daemon.send_replies():
        pass
    return daemon


@pytest.fixture
def site(tmp_path: Path, db_url: str, smtp: tuple[SmtpSink, int]) -> Iterator[Site]:
    """Four social tickets on the fake platform (replied to, so each has a link), served over HTTP, two agents.

    Example: ``with site.client() as c: site.login(c); c.get(f"/agent/tickets/{site.ticket('1').id}")``
    """
    sink, port = smtp
    web_port = free_port()  # known before the start, so that public_url is the address browsers and tests use
    daemon = make_site(tmp_path, db_url, port, public_url=f"http://127.0.0.1:{web_port}")
    adapter: FakeAdapter = daemon.adapters[("fake", "brand")]  # type: ignore[assignment]
    tokens = {r.in_reply_to.post_id: LINK.search(r.text).group(1) for r in adapter.posted}  # type: ignore[union-attr]
    try:
        with WebServer(daemon.web_app, web_port) as base:
            yield Site(daemon, base, adapter, sink, tokens)
    finally:
        daemon.close()
