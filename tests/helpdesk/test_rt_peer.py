"""The RT harness against the real Request Tracker 5: what the fairdesk RT client's tests will rely on."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx
import pytest

from tests.peers.rt import RtPeer, RtSmtp

pytestmark = pytest.mark.rt


def create(peer: RtPeer, token: str, **fields: Any) -> httpx.Response:
    body = {"Content": "My parcel never arrived.", "ContentType": "text/plain"} | fields
    return httpx.post(
        f"{peer.url}/REST/2.0/ticket", headers={"Authorization": f"token {token}"}, json=body, timeout=30.0
    )


def test_a_ticket_the_bot_creates_is_in_its_queue(rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue()
    res = create(rt_peer, rt_peer.token, Queue=queue, Subject="Complaint from @bob", Requestor="bob@example.org")
    assert res.status_code == 201, res.text
    [ticket] = rt_peer.tickets(queue)
    assert ticket["id"] == int(res.json()["id"])
    assert (ticket["Subject"], ticket["Status"], ticket["Queue"]) == ("Complaint from @bob", "new", queue)
    assert ticket["Requestors"] == ["bob@example.org"]
    assert ticket["Created"].endswith("Z")
    [tx] = [tx for tx in rt_peer.history(ticket["id"]) if tx["Type"] == "Create"]
    assert tx["Content"] == "My parcel never arrived." and tx["Creator"] == "fairdesk"


def test_a_queue_without_rights_refuses_the_bot(rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue(rights=False)
    res = create(rt_peer, rt_peer.token, Queue=queue, Subject="no")
    assert res.status_code in (400, 403), res.text
    assert rt_peer.tickets(queue) == []
    assert create(rt_peer, "1-1-not-a-token", Queue=queue, Subject="no").status_code == 401


def test_a_custom_field_value_round_trips(rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue()
    rt_peer.add_custom_field(queue, "External ID")
    res = create(rt_peer, rt_peer.token, Queue=queue, Subject="cf", CustomFields={"External ID": "x:1790"})
    assert res.status_code == 201, res.text
    assert rt_peer.ticket(res.json()["id"])["CustomFields"] == {"External ID": ["x:1790"]}
    # and RT finds it by value, which is how a client dedups a retried create
    found = httpx.get(
        f"{rt_peer.url}/REST/2.0/tickets",
        headers={"Authorization": f"token {rt_peer.token}"},
        params={"query": f"Queue = '{queue}' AND CF.{{External ID}} = 'x:1790'"},
    ).json()
    assert [item["id"] for item in found["items"]] == [res.json()["id"]]


def test_an_unknown_custom_field_is_dropped_silently(rt_peer: RtPeer) -> None:
    """RT pitfall: a custom field the queue does not have is ignored and the create still answers 201."""
    queue = rt_peer.new_queue()
    res = create(rt_peer, rt_peer.token, Queue=queue, Subject="typo", CustomFields={"Extrenal ID": "x:1"})
    assert res.status_code == 201, res.text
    assert rt_peer.ticket(res.json()["id"])["CustomFields"] == {}


def test_set_status_is_visible_in_the_ticket_and_its_history(rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue()
    ticket_id = int(create(rt_peer, rt_peer.token, Queue=queue, Subject="status").json()["id"])
    rt_peer.set_status(ticket_id, "resolved")
    assert rt_peer.ticket(ticket_id)["Status"] == "resolved"
    changes = [(tx["OldValue"], tx["NewValue"]) for tx in rt_peer.history(ticket_id) if tx["Type"] == "Status"]
    assert changes[-1] == ("new", "resolved")
    # RT pitfall: a change it refuses still answers 200, with the reason among the messages
    with pytest.raises(RuntimeError, match="isn't a valid status"):
        rt_peer.set_status(ticket_id, "no-such-status")


def test_correspondence_and_comments_are_in_the_history(rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue()
    res = create(rt_peer, rt_peer.token, Queue=queue, Subject="talk", Requestor="eve@example.org")
    ticket_id = int(res.json()["id"])
    auth = {"Authorization": f"token {rt_peer.token}"}
    for kind, text in (("correspond", "Hi Eve, we are on it. ✓"), ("comment", "internal note")):
        res = httpx.post(
            f"{rt_peer.url}/REST/2.0/ticket/{ticket_id}/{kind}",
            headers=auth,
            json={"Content": text, "ContentType": "text/plain"},
        )
        assert res.status_code == 201, res.text
    said = [(tx["Type"], tx["Content"]) for tx in rt_peer.history(ticket_id) if tx["Content"]]
    assert said[1:] == [("Correspond", "Hi Eve, we are on it. ✓"), ("Comment", "internal note")]
    # RT mails the requestor about the correspondence; scripts/rt keeps that mail as a file instead of sending it
    assert any(b"eve@example.org" in raw for raw in rt_peer.sent_mail())


def test_down_then_up_keeps_the_data_and_the_tokens(rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue()
    before = int(create(rt_peer, rt_peer.token, Queue=queue, Subject="before").json()["id"])
    rt_peer.down()
    try:
        with pytest.raises(httpx.TransportError):
            create(rt_peer, rt_peer.token, Queue=queue, Subject="during")
    finally:
        rt_peer.up()
    after = create(rt_peer, rt_peer.token, Queue=queue, Subject="after")
    assert after.status_code == 201, after.text
    assert [(t["id"], t["Subject"]) for t in rt_peer.tickets(queue)] == [
        (before, "before"),
        (int(after.json()["id"]), "after"),
    ]


def test_mail_sent_over_smtp_becomes_a_ticket_from_its_sender(rt_peer: RtPeer, rt_smtp: RtSmtp) -> None:
    queue = rt_peer.new_queue()
    msg = EmailMessage()
    msg["From"] = "Carol Customer <carol@example.org>"
    msg["To"] = f"{queue}@rt.fairdesk.test"  # rt_smtp files it in the queue named by the local part
    msg["Subject"] = "Where is my refund?"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("I asked three times.")
    with smtplib.SMTP(rt_smtp.host, rt_smtp.port, timeout=60) as client:
        client.send_message(msg)
    [(raw, ticket_id)] = rt_smtp.received
    assert ticket_id is not None and b"Where is my refund?" in raw
    ticket = rt_peer.ticket(ticket_id)
    assert (ticket["Queue"], ticket["Subject"], ticket["Requestors"]) == (
        queue,
        "Where is my refund?",
        ["carol@example.org"],
    )
    assert rt_peer.history(ticket_id)[0]["Content"].strip() == "I asked three times."


def test_mailgate_returns_none_when_rt_refuses_the_mail(rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue(rights=False)
    raw = b"From: dan@example.org\r\nTo: x@y\r\nSubject: refused\r\nMessage-ID: <r1@example.org>\r\n\r\nbody\r\n"
    assert rt_peer.mailgate(raw, queue) is None
    assert rt_peer.mailgate(raw, f"{queue}-missing") is None
