"""/agent/dashboard: tickets per day and time to first response per channel, as inline SVG under the strict CSP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bs4 import BeautifulSoup

from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import MailOutbox, MailState, Ticket, TicketEntry
from fairdesk.ticketing.report import first_response_times
from tests.web.conftest import AGENT, Site


def _ticket(session, channel: str, opened: datetime) -> Ticket:  # type: ignore[no-untyped-def]
    ticket = Ticket(channel=channel, priority=3, subject="s", body="b", created_at=opened, filed_at=opened)
    session.add(ticket)
    session.flush()
    return ticket


def test_first_response_counts_agents_only_not_the_automatic_reply(site: Site) -> None:
    opened = datetime.now(UTC) - timedelta(hours=10)
    with transaction(site.daemon.sessions) as session:
        social = _ticket(session, "social", opened)
        web = _ticket(session, "web", opened)
        session.add(
            TicketEntry(
                ticket_id=social.id,
                kind="reply",
                body="Public reply sent",
                actor="fairdesk",
                public=True,
                created_at=opened + timedelta(minutes=1),
            )
        )
        session.add(
            TicketEntry(
                ticket_id=social.id,
                kind="status",
                body="Status: open",
                actor="customer",
                public=True,
                created_at=opened + timedelta(minutes=2),
            )
        )
        session.add(
            TicketEntry(
                ticket_id=social.id,
                kind="status",
                body="Status: pending",
                actor=AGENT,
                public=True,
                created_at=opened + timedelta(hours=1),
            )
        )
        social.first_response_at = opened + timedelta(hours=1)  # what set_status(by_agent=True) records
        session.add(social)
        session.add(
            MailOutbox(
                ticket_id=web.id,
                to_addr="a@example.com",
                subject="s",
                body="b",
                actor=AGENT,
                state=MailState.SENT,
                sent_at=opened + timedelta(hours=5),
            )
        )
        session.add(
            MailOutbox(
                ticket_id=web.id,
                to_addr="a@example.com",
                subject="s",
                body="b",
                actor=AGENT,
                state=MailState.FAILED,
                created_at=opened + timedelta(hours=2),
            )
        )
    with transaction(site.daemon.sessions) as session:
        times = {t.channel: t for t in first_response_times(session=session, since=opened - timedelta(minutes=1))}
    assert times["social"].median_seconds == 3600 and times["social"].answered == 1
    assert times["web"].median_seconds == 5 * 3600
    assert times["email"].median_seconds is None and times["email"].opened == 0

    with site.client() as client:
        site.login(client)
        page = client.get("/agent/dashboard")
    soup = BeautifulSoup(page.text, "html.parser")
    medians = {row["data-channel"]: row.select_one(".median").text for row in soup.select("#response-table tbody tr")}
    assert medians == {"social": "1.0 h", "web": "5.0 h", "email": "—"}


def test_the_dashboard_draws_svg_with_classes_and_no_scripts_or_inline_styles(site: Site) -> None:
    with site.client() as client:
        site.login(client)
        page = client.get("/agent/dashboard", params={"days": 7})
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    soup = BeautifulSoup(page.text, "html.parser")
    per_day = soup.select_one("#chart-per-day")
    assert per_day is not None and per_day.name == "svg" and per_day.find("title") is not None
    bars = per_day.select("rect")
    # The four social tickets from the fixture were opened within the last two days.
    assert bars and {b["class"][0] for b in bars} == {"ch-social"}
    counted = sum(int(td.text) for row in soup.select("#per-day-table tbody tr") for td in row.select("td"))
    assert counted == 4 and len(soup.select("#per-day-table tbody tr")) == 7
    assert soup.find("script") is None and soup.find(attrs={"style": True}) is None
    assert soup.find("style") is None
