"""The daemon on X end to end: build() wires the real XAdapter (tweepy over HTTP) to the fake X server."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from pathlib import Path

import httpx
from sqlmodel import select

from fairdesk.app import Daemon, build
from fairdesk.config.settings import Settings, XAccount
from fairdesk.listener.x import XAdapter
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import AccountState, LedgerEntry, Outbox, ReplyState, Ticket, TicketEntry, utcnow
from fairdesk.ticketing.tokens import hash_token
from tests.fakes.x_server import FakeXServer
from tests.support import fake_classify

PUBLIC_URL = "https://help.acme.example.com"


def _settings(tmp_path: Path, account: XAccount, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", public_url=PUBLIC_URL, x={"brand": account.model_copy(update=changes)})


def _rows(daemon: Daemon, model: type) -> list:
    with transaction(daemon.sessions) as session:
        return list(session.exec(select(model)))


def _brand_replies(x_server: FakeXServer) -> dict[str, str]:
    """in_reply_to post id -> reply text, for everything the brand posted."""
    return {t.ref("replied_to"): t.text for t in x_server.posts_by("acme_support") if t.ref("replied_to")}


def test_x_mentions_become_tickets_with_one_reply_each_across_a_restart(
    x_server: FakeXServer, x_account: XAccount, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, x_account, search_query="acme -is:retweet")
    complaint = x_server.post("dana_k", "@acme_support my router is broken")
    praise = x_server.post("lee_t", "@acme_support love the new app")
    keyword = x_server.post("sam_p", "acme internet is down again")  # a keyword hit: ticketed, never replied to

    daemon = build(settings, classify=fake_classify)
    try:
        assert isinstance(daemon.adapters[("x", "brand")], XAdapter)  # the registry built the real adapter
        first = daemon.poll("x", "brand")
        assert first.error is None and first.new == 3
        assert daemon.send_replies() == 1
        assert daemon.send_replies() == 0
        tickets = {t.post_id: t for t in _rows(daemon, Ticket)}
        stored = {s.account: s.cursor for s in _rows(daemon, AccountState)}["brand"]
    finally:
        daemon.close()

    assert set(tickets) == {complaint, keyword}
    assert tickets[keyword].found_by == "search"
    assert tickets[complaint].post_url == f"https://x.com/dana_k/status/{complaint}"
    replies = _brand_replies(x_server)
    assert list(replies) == [complaint]
    token = re.search(rf"{re.escape(PUBLIC_URL)}/t/(\S+)", replies[complaint]).group(1)
    assert hash_token(token) == tickets[complaint].token_hash  # the link opens this ticket
    assert tickets[complaint].ref in replies[complaint]
    assert json.loads(stored) == {"mentions": praise, "search": keyword}

    # A restart: a new daemon on the same database resumes from the stored cursor.
    follow_up = x_server.post("dana_k", "@acme_support still broken, waiting since Monday", reply_to=complaint)
    other = x_server.post("kim", "@acme_support the app is down")
    x_server.clear_log()
    daemon = build(settings, classify=fake_classify)
    try:
        second = daemon.poll("x", "brand")
        daemon.send_replies()
        ledger = {e.post_id: e for e in _rows(daemon, LedgerEntry)}
        appended = [e for e in _rows(daemon, TicketEntry) if e.post_id == follow_up]
        outbox = _rows(daemon, Outbox)
    finally:
        daemon.close()

    assert x_server.requests("mentions")[0].query["since_id"] == praise
    assert x_server.requests("search")[0].query["since_id"] == keyword
    assert second.new == 3
    # The brand's own reply carries "acme" in its link, so keyword search finds it: flagged as the brand's own post.
    (own,) = [e for e in ledger.values() if e.reason == "own_post"]
    assert own.found_by == "search" and own.post_id in {t.id for t in x_server.posts_by("acme_support")}
    assert ledger[follow_up].outcome == "appended" and appended[0].ticket_id == tickets[complaint].id
    assert ledger[other].outcome == "ticketed"
    assert set(_brand_replies(x_server)) == {complaint, other}  # one reply per ticket; none to the follow-up
    assert all(o.state == ReplyState.SENT and o.remote_id for o in outbox)
    assert len(x_server.requests("create")) == 1


def test_a_reply_whose_outcome_a_crash_lost_is_not_posted_again(
    x_server: FakeXServer, x_account: XAccount, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, x_account)
    post = x_server.post("dana_k", "@acme_support my router is broken")
    daemon = build(settings, classify=fake_classify)
    try:
        daemon.poll("x", "brand")
        daemon.send_replies()
        # Pretend the daemon died after posting but before recording it: the row is stuck in SENDING.
        with transaction(daemon.sessions) as session:
            row = session.exec(select(Outbox)).one()
            row.state, row.remote_id = ReplyState.SENDING, None
            row.claimed_until = utcnow() - timedelta(minutes=1)  # its claim has run out
            session.add(row)
        daemon.send_replies()
        (row,) = _rows(daemon, Outbox)
    finally:
        daemon.close()

    (reply_id,) = [t.id for t in x_server.posts_by("acme_support")]
    assert row.state == ReplyState.SENT and row.remote_id == reply_id
    assert len(x_server.requests("create")) == 1 and len(x_server.requests("timeline")) == 1
    assert _brand_replies(x_server).keys() == {post}


def test_a_post_deleted_on_x_loses_its_text_in_the_sweep(
    x_server: FakeXServer, x_account: XAccount, tmp_path: Path
) -> None:
    post = x_server.post("dana_k", "@acme_support my router is broken, call me on 555-0100")
    daemon = build(_settings(tmp_path, x_account), classify=fake_classify)
    try:
        daemon.poll("x", "brand")
        assert daemon.sweep_deleted() == 0
        x_server.delete(post)
        assert daemon.sweep_deleted() == 1
        (ticket,) = _rows(daemon, Ticket)
        (entry,) = _rows(daemon, LedgerEntry)
    finally:
        daemon.close()
    assert ticket.deleted_at_source and "555-0100" not in ticket.body and "555-0100" not in entry.text


def test_a_gap_shows_in_healthz(x_server: FakeXServer, x_account: XAccount, tmp_path: Path) -> None:
    x_server.post("dana_k", "@acme_support my router is broken")
    daemon = build(_settings(tmp_path, x_account), classify=fake_classify)
    try:
        daemon.poll("x", "brand")
        with transaction(daemon.sessions) as session:  # a cursor the adapter cannot use: it restarts, with a gap
            state = session.get(AccountState, ("x", "brand"))
            state.cursor = "not-a-cursor"
            session.add(state)
        daemon.poll("x", "brand")
        health = asyncio.run(_get_json(daemon, "/healthz"))
    finally:
        daemon.close()
    (account,) = health["accounts"]
    assert (account["platform"], account["account"]) == ("x", "brand")
    assert account["gap_detected_at"] and account["healthy"] and account["last_success_at"]


async def _get_json(daemon: Daemon, path: str) -> dict:
    transport = httpx.ASGITransport(app=daemon.web_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fairdesk.test") as client:
        return (await client.get(path)).json()
