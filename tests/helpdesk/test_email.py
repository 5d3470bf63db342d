"""The email kind, end to end: a real SMTP server hands fairdesk's mail to RT's rt-mailgate, and the ticket is in RT."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from fairdesk.app import Daemon, build
from fairdesk.config.helpdesks import EmailHelpdesk as EmailSettings
from fairdesk.config.settings import MailSettings, SampleAccount, Settings
from fairdesk.ticketing.db import make_engine, transaction
from fairdesk.ticketing.models import DeliveryState, HelpdeskDelivery, Ticket
from fairdesk.ticketing.store import add_customer_details
from tests.peers.rt import RtPeer, RtSmtp
from tests.support import fake_classify

pytestmark = pytest.mark.rt


@pytest.fixture
def mailing(tmp_path: Path, rt_peer: RtPeer, rt_smtp: RtSmtp) -> Iterator[tuple[Daemon, str]]:
    """A daemon on the sample feed whose helpdesk is RT's email intake, reached through a real SMTP server."""
    queue = rt_peer.new_queue()
    rt_smtp.queue = queue
    settings = Settings(
        data_dir=tmp_path / "data",
        sample={"demo": SampleAccount(per_poll=6)},
        mail=MailSettings(smtp_host=rt_smtp.host, smtp_port=rt_smtp.port, smtp_security="none", from_address="x@y.z"),
        helpdesk={"desk": EmailSettings(kind="email", to="support@example.com", from_address="fairdesk@example.com")},  # type: ignore[arg-type]
    )
    daemon = build(settings, classify=fake_classify, engine=make_engine(f"sqlite:///{tmp_path / 'f.db'}"))
    yield daemon, queue
    daemon.close()


def test_each_complaint_becomes_an_rt_ticket_by_email_with_a_stable_message_id(
    mailing: tuple[Daemon, str], rt_peer: RtPeer, rt_smtp: RtSmtp
) -> None:
    daemon, queue = mailing
    daemon.poll_all()
    filed = daemon.deliver()
    with transaction(daemon.sessions) as session:
        refs = sorted(t.ref for t in session.exec(select(Ticket)))
        rows = session.exec(select(HelpdeskDelivery)).all()
    assert filed == len(refs) > 0 and {r.state for r in rows} == {DeliveryState.FILED}
    in_rt = sorted(t["Subject"][1:10] for t in rt_peer.tickets(queue))
    assert in_rt == refs  # one RT ticket per complaint, found in RT
    messages = [email.message_from_bytes(raw, policy=email.policy.default) for raw, _ in rt_smtp.received]
    ids = [m["Message-ID"] for m in messages]
    assert len(set(ids)) == len(ids) and all(r.remote_id in ids for r in rows)
    first = messages[0]
    assert first["From"] == "fairdesk@example.com" and first["Auto-Submitted"] == "auto-generated"
    assert first["X-Fairdesk-Reference"] in refs and "Filed by fairdesk as" in first.get_content()

    # The same ticket filed again (a resend after a crash) carries the same Message-ID.
    helpdesk = daemon.helpdesks["desk"]
    assert helpdesk.message_id(refs[0]) == helpdesk.message_id(refs[0])  # type: ignore[attr-defined]
    assert rows[0].remote_id == helpdesk.message_id(f"FD-{rows[0].ticket_id:06d}")  # type: ignore[attr-defined]


def test_details_follow_up_threaded_under_the_first_message(
    mailing: tuple[Daemon, str], rt_peer: RtPeer, rt_smtp: RtSmtp
) -> None:
    daemon, queue = mailing
    daemon.poll_all()
    daemon.deliver()
    with transaction(daemon.sessions) as session:
        ticket = session.exec(select(Ticket)).first()
        assert ticket is not None
        details = {"order_number": "", "details": "blinking red", "email": "pat@example.com", "consent": True}
        add_customer_details(session=session, ticket=ticket, **details)  # type: ignore[arg-type]
        first_id = session.exec(select(HelpdeskDelivery.remote_id).where(HelpdeskDelivery.ticket_id == ticket.id)).one()
    before = len(rt_smtp.received)
    daemon.deliver()
    (raw, _ticket_id) = rt_smtp.received[before]
    follow = email.message_from_bytes(raw, policy=email.policy.default)
    assert follow["In-Reply-To"] == first_id and follow["References"] == first_id
    assert follow["Reply-To"] == "pat@example.com" and "blinking red" in follow.get_content()
    assert follow["Subject"].startswith("Re: [")
