"""The daemon on a real local Bluesky network: build() -> poll -> ticket -> one public reply, across a restart."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from fairdesk.app import Daemon, build
from fairdesk.config.settings import BlueskyAccount, Settings
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import LedgerEntry, Outbox, ReplyState, Ticket, TicketEntry, utcnow
from tests.peers.bluesky import Account, BlueskyAccounts, BlueskyPeer
from tests.support import fake_classify

pytestmark = pytest.mark.bluesky

LINK = re.compile(r"http://127\.0\.0\.1:8000/t/([A-Za-z0-9_-]+)")


@pytest.fixture
def brand(bluesky_peer: BlueskyPeer) -> tuple[Account, str]:
    account = bluesky_peer.create_account("brand")
    return account, bluesky_peer.app_password(account)


@pytest.fixture
def settings(tmp_path: Path, bluesky_peer: BlueskyPeer, brand: tuple[Account, str]) -> Settings:
    """One Bluesky account on the local network; SQLite and the session file in a temp data dir."""
    account, app_password = brand
    return Settings(
        data_dir=tmp_path / "data",
        public_url="http://127.0.0.1:8000",
        bluesky={
            "acme": BlueskyAccount(
                handle=account.handle, app_password=SecretStr(app_password), service_url=bluesky_peer.pds_url
            )
        },
    )


@pytest.fixture
def daemon(settings: Settings) -> Iterator[Daemon]:
    """The real composition (registry -> make_bluesky_adapter) with the content-only fake classifier."""
    d = build(settings, classify=fake_classify)
    yield d
    d.close()


def poll_until(peer: BlueskyPeer, daemon: Daemon, *post_uris: str) -> dict[str, LedgerEntry]:
    """Poll until every post is in the ledger; return the ledger rows by post id."""

    def attempt() -> dict[str, LedgerEntry] | None:
        daemon.poll_all()
        with transaction(daemon.sessions) as session:
            rows = {r.post_id: r for r in session.exec(select(LedgerEntry)).all()}
        return rows if set(post_uris) <= set(rows) else None

    return peer.wait_for(attempt, "posts in the ledger")


async def _get(daemon: Daemon, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=daemon.web_app), base_url="http://test") as web:
        return await web.get(path)


def brand_replies(peer: BlueskyPeer, viewer: Account, brand: Account, uri: str) -> list[dict]:
    return [r["post"] for r in peer.thread(viewer, uri).get("replies", []) if r["post"]["author"]["did"] == brand.did]


def test_a_complaint_becomes_a_ticket_with_one_reply_and_praise_is_only_recorded(
    bluesky_peer: BlueskyPeer, brand: tuple[Account, str], daemon: Daemon, bluesky_accounts: BlueskyAccounts
) -> None:
    account, _ = brand
    customer = bluesky_accounts.customer
    complaint = bluesky_peer.post(customer, "", mention=account, after=" my order never arrived, still waiting")
    praise = bluesky_peer.post(customer, "Thanks ", mention=account, after=" you are great")

    ledger = poll_until(bluesky_peer, daemon, complaint.uri, praise.uri)
    sent = daemon.send_replies()

    assert (ledger[complaint.uri].outcome, ledger[praise.uri].outcome) == ("ticketed", "skipped")
    assert ledger[praise.uri].reason == "not_complaint"
    assert sent == 1
    (reply,) = bluesky_peer.wait_for(lambda: brand_replies(bluesky_peer, customer, account, complaint.uri), "reply")
    assert brand_replies(bluesky_peer, customer, account, praise.uri) == []
    text = reply["record"]["text"]
    token = LINK.search(text).group(1)  # type: ignore[union-attr]
    (facet,) = reply["record"]["facets"]
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert text.encode()[start:end].decode() == f"http://127.0.0.1:8000/t/{token}"
    with transaction(daemon.sessions) as session:
        ticket = session.exec(select(Ticket)).one()
        outbox = session.exec(select(Outbox)).one()
    assert ticket.post_id == complaint.uri and ticket.author_handle == customer.handle
    assert (outbox.state, outbox.remote_id) == (ReplyState.SENT, reply["uri"])
    page = asyncio.run(_get(daemon, f"/t/{token}"))  # the link in the public reply opens the customer's ticket
    assert page.status_code == 200 and ticket.ref in page.text


def test_a_restart_after_a_crash_mid_send_neither_refetches_nor_replies_twice(
    bluesky_peer: BlueskyPeer, brand: tuple[Account, str], settings: Settings, bluesky_accounts: BlueskyAccounts
) -> None:
    account, _ = brand
    customer = bluesky_accounts.customer
    first = build(settings, classify=fake_classify)
    complaint = bluesky_peer.post(customer, "", mention=account, after=" the app is broken since the update")
    poll_until(bluesky_peer, first, complaint.uri)
    assert first.send_replies() == 1
    bluesky_peer.wait_for(lambda: brand_replies(bluesky_peer, customer, account, complaint.uri), "reply")
    # The crash: the post went out, but the daemon died before recording it.
    with transaction(first.sessions) as session:
        row = session.exec(select(Outbox)).one()
        sent_uri = row.remote_id
        row.state, row.remote_id, row.claimed_until = ReplyState.SENDING, None, utcnow() - timedelta(seconds=1)
        session.add(row)
    first.close()

    second = build(settings, classify=fake_classify)
    try:
        results = second.poll_all()
        sent = second.send_replies()
        with transaction(second.sessions) as session:
            row = session.exec(select(Outbox)).one()
            ledger = session.exec(select(LedgerEntry)).all()
    finally:
        second.close()

    assert [r.new for r in results] == [0] and len(ledger) == 1
    assert sent == 0
    assert (row.state, row.remote_id) == (ReplyState.SENT, sent_uri)
    assert len(brand_replies(bluesky_peer, customer, account, complaint.uri)) == 1
    assert (settings.data_dir / "bluesky-acme.session").stat().st_mode & 0o777 == 0o600


def test_a_post_deleted_by_its_author_is_blanked_by_the_sweep(
    bluesky_peer: BlueskyPeer, brand: tuple[Account, str], daemon: Daemon, bluesky_accounts: BlueskyAccounts
) -> None:
    """Both kinds of stored post: one that became a ticket of its own, and one that joined the author's open ticket on
    the same problem (an entry on its timeline)."""
    account, _ = brand
    customer = bluesky_accounts.customer
    kept = bluesky_peer.post(customer, "", mention=account, after=" my refund never came")
    own = bluesky_peer.post(customer, "", mention=account, after=" the internet is down again, call me on 555-0100")
    joined = bluesky_peer.post(customer, "", mention=account, after=" still no refund for my card ending 4242")
    poll_until(bluesky_peer, daemon, kept.uri, own.uri, joined.uri)
    bluesky_peer.delete(customer, own.uri)
    bluesky_peer.delete(customer, joined.uri)

    # The AppView indexes each deletion on its own, so one sweep may see the first before the second: count across
    # sweeps, then check a further sweep finds nothing left to blank.
    found: list[int] = []

    def both_found() -> bool:
        found.append(daemon.sweep_deleted())
        return sum(found) >= 2

    bluesky_peer.wait_for(both_found, "the sweep to find the deletions")
    assert sum(found) == 2 and daemon.sweep_deleted() == 0

    with transaction(daemon.sessions) as session:
        tickets = {t.post_id: t for t in session.exec(select(Ticket)).all()}
        entries = session.exec(select(TicketEntry).where(TicketEntry.ticket_id == tickets[kept.uri].id)).all()
        ledger = {e.post_id: e.text for e in session.exec(select(LedgerEntry)).all()}
    assert set(tickets) == {kept.uri, own.uri}, "the second refund post joined the first one's ticket"
    assert tickets[own.uri].deleted_at_source and "555-0100" not in tickets[own.uri].body
    assert not tickets[kept.uri].deleted_at_source and "refund" in tickets[kept.uri].body
    assert not any("4242" in e.body for e in entries)
    assert [e.body for e in entries if e.post_id == joined.uri] == ["(deleted by its author)"]
    assert ledger[own.uri] == ledger[joined.uri] == "" and "refund" in ledger[kept.uri]


def test_a_complaint_in_a_thread_that_allows_no_replies_is_ticketed_and_its_reply_fails_with_the_reason(
    bluesky_peer: BlueskyPeer, brand: tuple[Account, str], daemon: Daemon, bluesky_accounts: BlueskyAccounts
) -> None:
    account, _ = brand
    customer = bluesky_accounts.customer
    complaint = bluesky_peer.post(customer, "", mention=account, after=" my order never arrived, still waiting")
    bluesky_peer.forbid_replies(customer, complaint)
    bluesky_peer.wait_for(lambda: bluesky_peer.replies_disabled(account, complaint.uri), "the threadgate")

    ledger = poll_until(bluesky_peer, daemon, complaint.uri)
    sent = daemon.send_replies()

    assert ledger[complaint.uri].outcome == "ticketed" and sent == 0
    with transaction(daemon.sessions) as session:
        outbox = session.exec(select(Outbox)).one()
    assert outbox.state == ReplyState.FAILED and outbox.remote_id is None
    assert "the thread's author allows no replies" in (outbox.last_error or "")
    assert bluesky_peer.replies_in_repo(account, complaint.uri) == []
