"""Time to first response is measured from when fairdesk filed the ticket to an agent's first response, per channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from fairdesk.ticketing.agents import add_agent
from fairdesk.ticketing.db import session_factory, transaction
from fairdesk.ticketing.intake import record_mention
from fairdesk.ticketing.models import Channel, Ticket
from fairdesk.ticketing.report import first_response_times
from fairdesk.ticketing.store import add_customer_details, open_web_ticket, set_status
from tests.support import fake_classify, mention


def _times(engine: Engine) -> dict[str, tuple[int, int, float | None]]:
    with transaction(session_factory(engine)) as session:
        rows = first_response_times(session=session, since=datetime.now(UTC) - timedelta(days=30))
    return {r.channel: (r.opened, r.answered, r.median_seconds) for r in rows}


def test_social_and_web_tickets_answered_alike_show_alike(engine: Engine) -> None:
    sessions = session_factory(engine)
    posted = datetime.now(UTC) - timedelta(days=3)  # fetched late (a backfill, an outage): filed just now
    text = "@brand my router is broken, still dead"
    with transaction(sessions) as session:
        add_agent(session=session, name="alex", password="correct horse battery staple")
        social = record_mention(
            session=session, mention=mention("1", text, created_at=posted), verdict=fake_classify([text])[0]
        )
        web, _ = open_web_ticket(
            session=session, email="a@b.test", subject="broken", description=text, verdict=fake_classify([text])[0]
        )
        session.flush()
        social_ticket = session.get(Ticket, social.ticket_id)
        assert social_ticket is not None
        for ticket in (social_ticket, web):
            set_status(session=session, ticket=ticket, status="open", actor="alex", by_agent=True)

    times = _times(engine)
    # Both answered within seconds of being filed; the post's three days before fairdesk saw it are not the agents'.
    assert times[Channel.SOCIAL][:2] == (1, 1) and times[Channel.WEB][:2] == (1, 1)
    assert times[Channel.SOCIAL][2] is not None and times[Channel.SOCIAL][2] < 60


def test_only_an_agent_responds_first(engine: Engine) -> None:
    sessions = session_factory(engine)
    text = "@brand charged twice, refund please"
    with transaction(sessions) as session:
        add_agent(session=session, name="customer", password="correct horse battery staple")  # a name, not a role
        result = record_mention(session=session, mention=mention("2", text), verdict=fake_classify([text])[0])
        ticket = session.get(Ticket, result.ticket_id)
        assert ticket is not None
        set_status(session=session, ticket=ticket, status="pending", actor="helpdesk:rt")  # read back, not an agent
        add_customer_details(session=session, ticket=ticket, order_number="1", details="hi", email="", consent=False)
    assert _times(engine)[Channel.SOCIAL][:2] == (1, 0)
