"""Backdated tickets in every channel with agent responses, for the dashboard (tests and screenshots)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.models import MailOutbox, MailState, Ticket, TicketEntry

SUBJECTS = {
    "social": [
        "internet down again since this morning",
        "charged twice this month",
        "parcel says delivered, it is not",
    ],
    "web": ["refund still not received", "router keeps dropping the connection", "cannot log in to my account"],
    "email": ["invoice shows the wrong plan", "engineer did not show up", "app crashes when I pay"],
}


def seed_history(sessions: SessionFactory, *, agent: str, days: int = 14, seed: int = 6) -> None:
    """A fortnight of tickets (a few a day per channel), most answered within hours by ``agent``."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        for day in range(days):
            for channel, subjects in SUBJECTS.items():
                for n in range(rng.randint(0, 4)):
                    opened = now - timedelta(days=day, hours=rng.uniform(1, 20))
                    subject = rng.choice(subjects)
                    ticket = Ticket(
                        channel=channel,
                        priority=rng.randint(1, 4),
                        subject=subject,
                        body=subject,
                        created_at=opened,
                        filed_at=opened,
                        status="solved",
                        contact_email=f"c{day}{n}@example.com",
                    )
                    session.add(ticket)
                    session.flush()
                    if rng.random() < 0.85:
                        answered = opened + timedelta(minutes=rng.uniform(20, 300))
                        if channel == "social":
                            ticket.first_response_at = answered
                            session.add(
                                TicketEntry(
                                    ticket_id=ticket.id,
                                    kind="status",
                                    body="Status: open",
                                    actor=agent,
                                    public=True,
                                    created_at=answered,
                                )
                            )
                        else:
                            session.add(
                                MailOutbox(
                                    ticket_id=ticket.id,
                                    to_addr=ticket.contact_email or "",
                                    body="Hi",
                                    subject=subject,
                                    actor=agent,
                                    state=MailState.SENT,
                                    created_at=answered,
                                    sent_at=answered,
                                )
                            )
