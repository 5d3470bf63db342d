"""Each helpdesk kind's read-only check(), as `fairdesk doctor` runs it, against real peers (RT, SMTP)."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller

from fairdesk.helpdesk.base import Refused, Unavailable
from fairdesk.helpdesk.email import EmailHelpdesk
from fairdesk.helpdesk.rt import RtHelpdesk
from fairdesk.ticketing.mail import MailConfig
from tests.peers.rt import RtPeer
from tests.support import free_port
from tests.test_doctor import _Sink


def _email(port: int) -> EmailHelpdesk:
    config = MailConfig(host="127.0.0.1", sender="fairdesk@example.com", port=port, security="none", timeout=2.0)
    return EmailHelpdesk("desk", config=config, to="support@example.com", installation="https://fd.example")


def test_the_email_kind_greets_the_smtp_server_and_sends_nothing() -> None:
    sink, port = _Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)  # a real SMTP server (aiosmtpd)
    controller.start()
    try:
        assert _email(port).check() == f"127.0.0.1:{port} answers (none)"
    finally:
        controller.stop()
    assert sink.messages == []


def test_the_email_kind_fails_when_nothing_listens() -> None:
    with pytest.raises(Unavailable, match="could not reach 127.0.0.1"):
        _email(free_port()).check()


@pytest.mark.rt
def test_the_rt_kind_proves_the_token_and_the_queue(rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue()
    good = RtHelpdesk("rt", url=rt_peer.url, queue=queue, token=rt_peer.token, timeout=10)
    assert f"queue '{queue}'" in good.check()
    assert rt_peer.tickets(queue) == []
    with pytest.raises(Refused):
        RtHelpdesk("rt", url=rt_peer.url, queue=queue, token="not-a-token", timeout=10).check()
    with pytest.raises(Refused):
        RtHelpdesk("rt", url=rt_peer.url, queue="No Such Queue", token=rt_peer.token, timeout=10).check()
