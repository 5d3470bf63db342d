"""A post is one ledger entry whichever stream saw it first; a mention first seen by keyword search is answered."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlmodel import select

from fairdesk.app import Daemon, build
from fairdesk.config.settings import Settings, XAccount
from fairdesk.listener.base import FoundBy, Mention
from fairdesk.listener.x import XAdapter
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.intake import record_mention
from fairdesk.ticketing.models import LedgerEntry, OptOut, Outbox, ReplyState, Ticket
from tests.fakes.x_server import FakeXServer
from tests.support import FakeAdapter, fake_classify, mention


def _rows(daemon: Daemon, model: type) -> list:
    with transaction(daemon.sessions) as session:
        return list(session.exec(select(model)))


def _as_keyword_hit(m: Mention) -> Mention:
    return replace(m, found_by=FoundBy.SEARCH)


def test_a_keyword_hit_later_returned_as_a_mention_is_upgraded_and_answered_once(
    daemon: Daemon, fake_adapter: FakeAdapter
) -> None:
    post = mention("1", "@brand my router is broken")
    # Search saw it first; the mentions timeline returns it in the next poll, and again in a repeated batch.
    fake_adapter.mentions = [_as_keyword_hit(post), post, post]
    fake_adapter.per_fetch = 1

    first = daemon.poll("fake", "brand")
    assert first.replies_queued == 0 and _rows(daemon, Outbox) == []
    daemon.poll("fake", "brand")
    daemon.poll("fake", "brand")

    (entry,) = _rows(daemon, LedgerEntry)
    (ticket,) = _rows(daemon, Ticket)
    (outbox,) = _rows(daemon, Outbox)
    assert (entry.post_id, entry.found_by, entry.outcome) == ("1", "mention", "ticketed")
    assert ticket.found_by == "mention" and entry.ticket_id == ticket.id
    assert (outbox.ticket_id, outbox.in_reply_to) == (ticket.id, "1")
    assert daemon.send_replies() == 1 and daemon.send_replies() == 0
    assert len(fake_adapter.replies_to("1")) == 1


def test_one_batch_with_a_post_from_both_streams_is_one_entry_as_a_mention(
    daemon: Daemon, fake_adapter: FakeAdapter
) -> None:
    post = mention("1", "@brand my router is broken")
    fake_adapter.mentions = [_as_keyword_hit(post), post]

    result = daemon.poll("fake", "brand")

    (entry,) = _rows(daemon, LedgerEntry)
    assert entry.found_by == "mention" and result.new == 1
    assert [o.in_reply_to for o in _rows(daemon, Outbox)] == ["1"]
    assert _rows(daemon, Ticket)[0].found_by == "mention"


def test_an_upgrade_queues_no_reply_the_rules_forbid(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    opted_out = mention("1", "@brand my router is broken", author_id="quiet")
    own = mention("2", "@brand service is down", from_account=True)
    praise = mention("3", "@brand love the new app")
    repost = mention("4", "RT @x: @brand is down", kind="repost", addresses_account=False)
    with transaction(daemon.sessions) as session:
        session.add(OptOut(platform="fake", author_id="quiet"))
    fake_adapter.mentions = [*map(_as_keyword_hit, (opted_out, own, praise, repost)), opted_out, own, praise, repost]
    fake_adapter.per_fetch = 4

    daemon.poll("fake", "brand")
    daemon.poll("fake", "brand")

    ledger = {e.post_id: (e.found_by, e.outcome, e.reason) for e in _rows(daemon, LedgerEntry)}
    assert ledger == {
        "1": ("mention", "ticketed", None),
        "2": ("mention", "skipped", "own_post"),
        "3": ("mention", "skipped", "not_complaint"),
        "4": ("mention", "skipped", "repost"),
    }
    assert _rows(daemon, Outbox) == []


def test_a_mention_never_downgrades_to_a_keyword_hit(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    post = mention("1", "@brand my router is broken")
    fake_adapter.mentions = [post, _as_keyword_hit(post)]
    fake_adapter.per_fetch = 1

    daemon.poll("fake", "brand")
    daemon.poll("fake", "brand")

    (entry,) = _rows(daemon, LedgerEntry)
    assert entry.found_by == "mention" and _rows(daemon, Ticket)[0].found_by == "mention"
    assert len(_rows(daemon, Outbox)) == 1


def test_on_x_a_mention_first_recorded_as_a_keyword_hit_gets_its_one_reply(
    x_server: FakeXServer, x_account: XAccount, x_adapter: XAdapter, tmp_path: Path
) -> None:
    post = x_server.post("dana_k", "@acme_support acme broke my order, still broken")
    (seen,) = x_adapter.fetch(None).mentions
    settings = Settings(data_dir=tmp_path / "data", x={"brand": x_account.model_copy(update={"search_query": "acme"})})
    daemon = build(settings, classify=fake_classify)
    try:
        # A ledger from before search left mentions out: the post was recorded as a keyword hit, not answered.
        with transaction(daemon.sessions) as session:
            (verdict,) = fake_classify([seen.text])
            record_mention(session=session, mention=_as_keyword_hit(seen), verdict=verdict)
        assert daemon.send_replies() == 0

        daemon.poll("x", "brand")
        sent = daemon.send_replies()
        (entry,) = _rows(daemon, LedgerEntry)
        (outbox,) = _rows(daemon, Outbox)
    finally:
        daemon.close()

    assert sent == 1 and entry.found_by == "mention"
    assert outbox.state == ReplyState.SENT
    (reply,) = x_server.posts_by("acme_support")
    assert reply.ref("replied_to") == post
