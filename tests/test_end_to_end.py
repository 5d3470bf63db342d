"""The sample feed end to end over HTTP: mentions in, tickets, outbox replies, the link page, the agent queue."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from bs4 import BeautifulSoup
from sqlmodel import select

from fairdesk.app import Daemon, build
from fairdesk.config.settings import SampleAccount, Settings
from fairdesk.listener.sample import SampleAdapter
from fairdesk.ticketing.agents import ensure_first_agent
from fairdesk.ticketing.db import make_engine, transaction
from fairdesk.ticketing.models import Channel, LedgerEntry, Outbox, ReplyState, Ticket
from tests.support import fake_classify

LINK = re.compile(r"/t/([A-Za-z0-9_-]{22,})")


class LiveServer:
    """The daemon's web app on a real socket (uvicorn in a thread), for tests that go over HTTP."""

    def __init__(self, app: object) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("web server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def demo(tmp_path: Path, db_url: str) -> Iterator[tuple[Daemon, str, tuple[str, str]]]:
    """The embedded default (sample feed), wired on each database, with an agent and the web pages served."""
    settings = Settings(data_dir=tmp_path / "data", sample={"demo": SampleAccount(per_poll=20)})
    daemon = build(settings, classify=fake_classify, engine=make_engine(db_url))
    with transaction(daemon.sessions) as session:
        first = ensure_first_agent(session=session)
    assert first is not None
    with LiveServer(daemon.web_app) as base:
        yield daemon, base, first
    daemon.close()


def _csrf(html: str) -> str:
    field = BeautifulSoup(html, "html.parser").find("input", {"name": "csrf"})
    assert field is not None
    return str(field["value"])


def test_sample_feed_end_to_end_over_http(demo: tuple[Daemon, str, tuple[str, str]]) -> None:
    daemon, base, (agent, password) = demo
    for _ in range(4):  # the whole feed, at 20 posts a poll
        daemon.poll_all()
    while daemon.send_replies():
        pass

    with transaction(daemon.sessions) as session:
        ledger = session.exec(select(LedgerEntry)).all()
        tickets = session.exec(select(Ticket)).all()
        outbox = session.exec(select(Outbox)).all()
    feed_size = len(daemon.adapters[("sample", "demo")]._posts)  # type: ignore[attr-defined]
    assert len(ledger) == feed_size  # every post has an outcome
    assert {e.reason for e in ledger if e.outcome == "skipped"} >= {"own_post", "repost"}
    assert tickets and all(t.channel == Channel.SOCIAL for t in tickets)
    assert outbox and {o.state for o in outbox} == {ReplyState.SENT}

    sample: SampleAdapter = daemon.adapters[("sample", "demo")]  # type: ignore[assignment]
    replies = sample.sent()
    assert len(replies) == len(outbox)
    # Keyword hits (the post that names another brand) and reposts are never replied to.
    replied_to = {r["in_reply_to"] for r in replies}
    not_addressed = {e.post_id for e in ledger if e.found_by == "search" or e.kind == "repost"}
    assert not replied_to & not_addressed

    with httpx.Client(base_url=base, follow_redirects=True) as client:
        page = client.get("/sample")
        assert page.status_code == 200
        shown = BeautifulSoup(page.text, "html.parser").select(".reply-text")
        (first,) = [p for p in shown if p.get_text() == replies[0]["text"]]

        token = LINK.search(replies[0]["text"]).group(1)  # type: ignore[union-attr]
        assert first.a is not None and first.a["href"] == f"/t/{token}"
        ticket_page = client.get(str(first.a["href"]))  # follow the reply's link, as the README says
        assert ticket_page.status_code == 200
        soup = BeautifulSoup(ticket_page.text, "html.parser")
        with transaction(daemon.sessions) as session:
            ticket = session.exec(select(Ticket).where(Ticket.post_id == replies[0]["in_reply_to"])).one()
        assert soup.select_one(".ref").text == ticket.ref
        assert soup.select_one("#status").text == "new"
        assert soup.select_one("#post").text == ticket.body

        secret_detail = "order 77 arrived smashed"
        sent = client.post(
            f"/t/{token}",
            data={
                "csrf": _csrf(ticket_page.text),
                "order_number": "A-77",
                "details": secret_detail,
                "email": "pat@example.com",
                "consent": "yes",
            },
        )
        assert sent.status_code == 200 and "Thank you" in sent.text
        assert secret_detail not in sent.text and "pat@example.com" not in sent.text  # write-only page

        assert client.get("/agent").url.path == "/agent/login"
        login_page = client.get("/agent/login")
        logged_in = client.post(
            "/agent/login", data={"csrf": _csrf(login_page.text), "name": agent, "password": password}
        )
        assert logged_in.url.path == "/agent"
        refs = [a.text for a in BeautifulSoup(logged_in.text, "html.parser").select("tr.ticket-row a")]
        assert ticket.ref in refs
        view = client.get(f"/agent/tickets/{ticket.id}")
        assert secret_detail in view.text and "pat@example.com" in view.text

        health = client.get("/healthz").json()
        assert health["accounts"][0]["platform"] == "sample" and health["accounts"][0]["last_success_at"]


def test_script_in_a_post_is_shown_as_text(demo: tuple[Daemon, str, tuple[str, str]]) -> None:
    daemon, base, _ = demo
    for _ in range(4):
        daemon.poll_all()
    while daemon.send_replies():
        pass
    sample: SampleAdapter = daemon.adapters[("sample", "demo")]  # type: ignore[assignment]
    with transaction(daemon.sessions) as session:
        hostile = session.exec(select(Ticket).where(Ticket.body.contains("<script>"))).first()  # type: ignore[attr-defined]
    assert hostile is not None
    reply = next(r for r in sample.sent() if r["in_reply_to"] == hostile.post_id)
    token = LINK.search(reply["text"]).group(1)  # type: ignore[union-attr]
    html = httpx.get(f"{base}/t/{token}").text
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("script") is None
    assert "&lt;script&gt;" in html
    assert soup.select_one("#post").text == hostile.body


def test_unknown_and_malformed_tokens_get_the_ordinary_404(demo: tuple[Daemon, str, tuple[str, str]]) -> None:
    _, base, _ = demo
    missing_page = httpx.get(f"{base}/no-such-page")
    for path in ("/t/" + "A" * 22, "/t/x", "/t/%3Cscript%3E"):
        response = httpx.get(base + path)
        assert response.status_code == 404
        assert response.text == missing_page.text


def test_posts_without_the_csrf_token_are_refused(demo: tuple[Daemon, str, tuple[str, str]]) -> None:
    daemon, base, _ = demo
    before = _count(daemon, Ticket)
    response = httpx.post(f"{base}/contact", data={"email": "a@example.com", "description": "broken"})
    assert response.status_code == 403
    assert _count(daemon, Ticket) == before


def test_web_form_tickets_join_the_same_queue_under_the_same_rule(demo: tuple[Daemon, str, tuple[str, str]]) -> None:
    daemon, base, _ = demo
    with httpx.Client(base_url=base) as client:
        form = client.get("/contact")
        done = client.post(
            "/contact",
            data={
                "csrf": _csrf(form.text),
                "email": "sam@example.com",
                "subject": "Router",
                "description": "router still broken, never works, waiting a week",
            },
        )
        assert done.status_code == 200
        link = BeautifulSoup(done.text, "html.parser").select_one("#ticket-link")["href"]
        token = LINK.search(str(link)).group(1)  # type: ignore[union-attr]
        assert client.get(f"/t/{token}").status_code == 200
    with transaction(daemon.sessions) as session:
        web = session.exec(select(Ticket).where(Ticket.channel == Channel.WEB)).one()
    expected = fake_classify(["Router\nrouter still broken, never works, waiting a week"])[0]
    assert (web.label, web.severity, web.priority) == ("complaint", expected.severity, 5 - expected.severity)  # type: ignore[operator]


def test_every_response_carries_the_security_headers(demo: tuple[Daemon, str, tuple[str, str]]) -> None:
    _, base, _ = demo
    for path in ("/", "/contact", "/agent/login", "/t/nope"):
        headers = httpx.get(base + path).headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"


def _count(daemon: Daemon, model: type) -> int:
    with transaction(daemon.sessions) as session:
        return len(session.exec(select(model)).all())
