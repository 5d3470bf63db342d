"""The agents' queue over HTTP: login and cookies, filters, blind triage, logged actions, email replies over SMTP."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from bs4 import BeautifulSoup
from pydantic import ValidationError
from sqlmodel import select

from fairdesk.config.settings import MailSettings
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import HandleReveal, MailOutbox, Ticket, TicketEntry
from fairdesk.ticketing.store import pseudonym
from fairdesk.ticketing.web.limits import Limit, RateLimits
from tests.support import free_port
from tests.web.conftest import AGENT, OTHER_AGENT, OTHER_PASSWORD, Site, WebServer, csrf_of, make_site


def _soup(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def _refs(response: httpx.Response) -> list[str]:
    return [a.text for a in _soup(response).select("tr.ticket-row td:first-child a")]


def _act(client: httpx.Client, ticket_id: int, **data: str) -> httpx.Response:
    page = client.get(f"/agent/tickets/{ticket_id}")
    return client.post(f"/agent/tickets/{ticket_id}", data={"csrf": csrf_of(page.text), **data})


def _entries(site: Site, ticket_id: int | None, kind: str) -> list[TicketEntry]:
    with transaction(site.daemon.sessions) as session:
        rows = session.exec(select(TicketEntry).where(TicketEntry.ticket_id == ticket_id, TicketEntry.kind == kind))
        return list(rows)


def test_session_cookie_is_httponly_samesite_and_secure_over_https(tmp_path: Path, smtp: tuple) -> None:
    daemon = make_site(tmp_path, f"sqlite:///{tmp_path / 'https.db'}", smtp[1], public_url="https://help.example")
    try:
        with WebServer(daemon.web_app, free_port()) as base:
            response = httpx.get(f"{base}/agent/login")
    finally:
        daemon.close()
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_login_logout_and_slow_down_after_repeated_failures(site: Site) -> None:
    with site.client() as client:
        assert site.login(client).url.path == "/agent"
        assert "httponly" in client.get("/agent/login").headers.get("set-cookie", "httponly").lower()
        queue = client.get("/agent")
        client.post("/agent/logout", data={"csrf": csrf_of(queue.text)})
        assert client.get("/agent").url.path == "/agent/login"
    with site.client() as client:
        for _ in range(5):
            assert site.login(client, OTHER_AGENT, "wrong password!").status_code == 401
        slowed = site.login(client, OTHER_AGENT, OTHER_PASSWORD)  # the right password, but this client must wait
        assert slowed.status_code == 401 and slowed.url.path == "/agent/login"


def test_login_attempts_are_rate_limited_per_client(site: Site) -> None:
    site.daemon.web_app.state.ctx.limits = RateLimits(login_per_client=Limit(3, 900))
    with site.client() as client:
        codes = [site.login(client, "nobody", "wrong password").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_the_queue_holds_every_channel_with_filters_and_search(site: Site) -> None:
    with site.client() as client:
        site.login(client)
        page = client.get("/contact")
        client.post(
            "/contact",
            data={
                "csrf": csrf_of(page.text),
                "email": "sam@example.com",
                "subject": "Refund",
                "description": "charged twice, still waiting for my refund",
            },
        )
        with transaction(site.daemon.sessions) as session:
            web = session.exec(select(Ticket).where(Ticket.channel == "web")).one()
        everything = _refs(client.get("/agent"))
        assert web.ref in everything and site.ticket("1").ref in everything
        assert _refs(client.get("/agent", params={"channel": "web"})) == [web.ref]
        assert web.ref not in _refs(client.get("/agent", params={"platform": "fake"}))
        billing = _refs(client.get("/agent", params={"category": "billing"}))
        assert set(billing) == {web.ref, site.ticket("2").ref}
        assert _refs(client.get("/agent", params={"q": "parcel"})) == [site.ticket("3").ref]
        assert _refs(client.get("/agent", params={"q": site.ticket("4").ref})) == [site.ticket("4").ref]
        severe = _refs(client.get("/agent", params={"severity": str(site.ticket("1").severity)}))
        assert site.ticket("1").ref in severe
        _act(client, site.ticket("1").id, action="status", status="solved")  # type: ignore[arg-type]
        assert site.ticket("1").ref not in _refs(client.get("/agent"))  # "active" by default
        assert _refs(client.get("/agent", params={"status": "solved"})) == [site.ticket("1").ref]
        # The same priority rule orders every channel: the order follows priority, then age, whatever the channel.
        rows = _soup(client.get("/agent", params={"status": ""})).select("tr.ticket-row .prio")
        priorities = [int(p.text[1:]) for p in rows]
        assert priorities == sorted(priorities)


def test_categories_come_from_the_text(site: Site) -> None:
    assert [site.ticket(p).category for p in "123"] == ["outage", "billing", "delivery"]


def test_blind_triage_hides_the_handle_until_revealed_and_the_reveal_is_logged_and_kept(site: Site) -> None:
    ticket = site.ticket("1")
    with site.client() as client:
        site.login(client)
        queue = client.get("/agent")
        assert "famous_person" not in queue.text and pseudonym(ticket) in queue.text
        view = client.get(f"/agent/tickets/{ticket.id}")
        assert _soup(view).select_one("#customer").text == pseudonym(ticket)
        _act(client, ticket.id, action="reveal")  # type: ignore[arg-type]
        assert _soup(client.get(f"/agent/tickets/{ticket.id}")).select_one("#customer").text == "@famous_person"
    [reveal] = _entries(site, ticket.id, "reveal")
    assert reveal.actor == AGENT and reveal.created_at is not None
    with site.client() as fresh:  # a new login (new cookie) still sees it: the reveal is kept in the database
        site.login(fresh)
        assert "@famous_person" in fresh.get("/agent").text
    with site.client() as other:  # but only for the agent who chose to reveal it
        site.login(other, OTHER_AGENT, OTHER_PASSWORD)
        assert "famous_person" not in other.get(f"/agent/tickets/{ticket.id}").text
    with transaction(site.daemon.sessions) as session:
        assert [(r.agent, r.ticket_id) for r in session.exec(select(HandleReveal))] == [(AGENT, ticket.id)]


def test_status_notes_and_assignment_are_logged_with_agent_and_time(site: Site) -> None:
    ticket = site.ticket("2")
    with site.client() as client:
        site.login(client)
        _act(client, ticket.id, action="status", status="pending")  # type: ignore[arg-type]
        _act(client, ticket.id, action="assign", assignee=OTHER_AGENT)  # type: ignore[arg-type]
        _act(client, ticket.id, action="note", note="called the billing team")  # type: ignore[arg-type]
        assert _act(client, ticket.id, action="assign", assignee="ghost").status_code == 400  # type: ignore[arg-type]
        timeline = _soup(client.get(f"/agent/tickets/{ticket.id}")).select("#timeline li")
        customer = client.get(f"/t/{site.tokens['2']}")
    texts = [li.text for li in timeline]
    assert any("status by alex" in t and "Status: pending" in t for t in texts)
    assert any("assign by alex" in t and f"Assigned to {OTHER_AGENT}" in t for t in texts)
    assert any("note by alex" in t for t in texts)
    assert all(li.find("time") is not None for li in timeline)
    assert _soup(customer).select_one("#status").text == "pending"
    assert "called the billing team" not in customer.text and OTHER_AGENT not in customer.text


def _give_email(site: Site, post_id: str, address: str) -> None:
    token = site.tokens[post_id]
    with site.client() as customer:
        csrf = csrf_of(customer.get(f"/t/{token}").text)
        assert customer.post(f"/t/{token}", data={"csrf": csrf, "email": address, "consent": "yes"}).status_code == 200


def test_replies_go_by_email_over_smtp_and_are_recorded(site: Site) -> None:
    _give_email(site, "3", "night.owl@example.com")
    ticket = site.ticket("3")
    posted_before = len(site.adapter.posted)
    with site.client() as client:
        site.login(client)
        done = _act(client, ticket.id, action="email", message="Sorry! A new parcel leaves today.")  # type: ignore[arg-type]
        assert _soup(done).select_one("#flash").text == "Email sent."
        entry = _soup(done).select_one("#timeline li.entry-email")
    [message] = site.sink.messages
    assert message["To"] == "night.owl@example.com" and message["From"] == "support@fairdesk.test"
    assert message["Subject"].startswith(f"[{ticket.ref}]")
    assert "A new parcel leaves today." in message.get_content()
    assert entry is not None and "sent" in entry.select_one(".badge").text and "by alex" in entry.text
    assert len(site.adapter.posted) == posted_before  # nothing was posted on the social platform


def test_a_refused_email_is_shown_and_can_be_retried(site: Site) -> None:
    _give_email(site, "1", "famous@example.com")
    ticket = site.ticket("1")
    site.sink.refuse.add("famous@example.com")
    with site.client() as client:
        site.login(client)
        failed = _act(client, ticket.id, action="email", message="We are on it.")  # type: ignore[arg-type]
        assert "not sent" in _soup(failed).select_one("#flash").text
        error = _soup(failed).select_one("#timeline .mail-error").text
        assert "550" in error and "mailbox unavailable" in error
        with transaction(site.daemon.sessions) as session:
            [row] = session.exec(select(MailOutbox)).all()
        assert (row.state, row.attempts) == ("failed", 1)
        site.sink.refuse.clear()
        retried = _act(client, ticket.id, action="retry", mail_id=str(row.id))  # type: ignore[arg-type]
        assert _soup(retried).select_one("#flash").text == "Email sent."
    assert [m["To"] for m in site.sink.messages] == ["famous@example.com"]
    with transaction(site.daemon.sessions) as session:
        [row] = session.exec(select(MailOutbox)).all()
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)


def test_an_unreachable_smtp_server_is_a_visible_failure(site: Site) -> None:
    ctx = site.daemon.web_app.state.ctx
    ctx.mail = replace(ctx.mail, port=free_port())  # nothing listens there
    _give_email(site, "2", "plain@example.com")
    with site.client() as client:
        site.login(client)
        page = _act(client, site.ticket("2").id, action="email", message="Refund on its way.")  # type: ignore[arg-type]
    assert "could not send" in _soup(page).select_one("#timeline .mail-error").text


def test_no_email_form_without_a_contact_address_and_no_free_text_social_reply(site: Site) -> None:
    ticket = site.ticket("4")
    with site.client() as client:
        site.login(client)
        view = _soup(client.get(f"/agent/tickets/{ticket.id}"))
        assert view.select_one("#no-email") is not None and view.select_one("#message") is None
        refused = _act(client, ticket.id, action="email", message="hello")  # type: ignore[arg-type]
        assert refused.status_code == 400
        assert _act(client, ticket.id, action="reply", message="public hi").status_code == 400  # type: ignore[arg-type]
    assert not site.sink.messages


def test_agent_pages_need_a_login(site: Site) -> None:
    with site.client() as client:
        for path in ("/agent", f"/agent/tickets/{site.ticket('1').id}", "/agent/dashboard"):
            assert client.get(path).url.path == "/agent/login"
        csrf = csrf_of(client.get("/agent/login").text)
        client.post(
            f"/agent/tickets/{site.ticket('1').id}", data={"csrf": csrf, "action": "status", "status": "closed"}
        )
    assert site.ticket("1").status == "new"


def test_unsent_emails_are_flagged_in_the_queue_and_email_can_be_switched_off(site: Site) -> None:
    with pytest.raises(ValidationError, match="from_address is needed"):
        MailSettings(smtp_host="smtp.example.com")
    _give_email(site, "2", "plain@example.com")
    site.sink.refuse.add("plain@example.com")
    ticket = site.ticket("2")
    with site.client() as client:
        site.login(client)
        _act(client, ticket.id, action="email", message="Refund on its way.")  # type: ignore[arg-type]
        row = next(r for r in _soup(client.get("/agent")).select("tr.ticket-row") if ticket.ref in r.text)
        assert row.select_one(".unsent") is not None
        site.daemon.web_app.state.ctx.mail = None
        view = _soup(client.get(f"/agent/tickets/{ticket.id}"))
        assert view.select_one("#no-mail") is not None and view.select_one("#message") is None
