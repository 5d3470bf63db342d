"""Reach-blind by construction: no field can hold reach, and reach in the raw payload changes nothing."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import select

from fairdesk.jobs.poll import poll_once
from fairdesk.jobs.replies import ReplyPolicy, send_due_replies
from listener.base import MENTION_FIELDS, Mention
from listener.sample import BUNDLED_FEED, to_mention
from tests.support import FakeAdapter, fake_classify
from ticketing.db import make_engine, migrate, session_factory, transaction
from ticketing.models import Outbox, Ticket

REACH_WORDS = re.compile(
    r"follow|verif|metric|influen|impression|like|retweet|repost_count|listed|reach|bio|profile|raw"
)
FEED = [json.loads(line) for line in BUNDLED_FEED.read_text(encoding="utf-8").splitlines() if line.strip()]
TEMPLATE = "We opened {ref}: {link}"


def test_the_type_that_leaves_listener_has_no_field_that_could_hold_reach() -> None:
    assert not [name for name in MENTION_FIELDS if REACH_WORDS.search(name)]
    assert set(MENTION_FIELDS) == {
        "platform",
        "account",
        "post_id",
        "author_id",
        "author_handle",
        "text",
        "created_at",
        "url",
        "kind",
        "found_by",
        "addresses_account",
        "from_account",
        "reply_to_id",
        "conversation_id",
        "lang",
    }
    for f in dataclasses.fields(Mention):
        assert f.type in ("str", "str | None", "bool", "datetime", "MentionKind", "FoundBy"), f.name


def test_the_ticket_table_has_no_column_that_could_hold_reach() -> None:
    assert not [c for c in Ticket.__table__.columns.keys() if REACH_WORDS.search(c)]


reach = st.fixed_dictionaries(
    {
        "followers_count": st.integers(0, 10**9),
        "following_count": st.integers(0, 10**6),
        "verified": st.booleans(),
        "verified_type": st.sampled_from(["blue", "business", "government", "none"]),
        "listed_count": st.integers(0, 10**5),
        "display_name": st.text(max_size=30),
        "bio": st.text(max_size=80),
    }
)
metrics = st.fixed_dictionaries(
    {k: st.integers(0, 10**8) for k in ("like_count", "retweet_count", "reply_count", "impression_count")}
)


def _ticketed(engine: Engine, payload: dict) -> tuple[dict, str]:
    """Run one raw post through the daemon's real path; return its ticket (minus the clock) and its reply."""
    mention = to_mention(payload, account="brand", handle="fairdesk_demo", public_url="http://127.0.0.1:8000")
    adapter = FakeAdapter(mentions=[dataclasses.replace(mention, platform="fake")])
    sessions = session_factory(engine)
    poll_once(adapter, classify=fake_classify, sessions=sessions, owner="t")
    send_due_replies(
        {("fake", "brand"): adapter},
        sessions=sessions,
        policy=ReplyPolicy(TEMPLATE, "http://127.0.0.1:8000"),
        owner="t",
    )
    with transaction(sessions) as session:
        ticket = session.exec(select(Ticket).where(Ticket.post_id == mention.post_id)).first()
        outbox = session.exec(select(Outbox).where(Outbox.in_reply_to == mention.post_id)).first()
    dumped = ticket.model_dump(exclude={"updated_at", "token_hash"}) if ticket else {}
    reply = re.sub(r"/t/\S+", "/t/<token>", adapter.posted[0].text) if adapter.posted else ""
    assert (outbox is not None) == bool(reply)
    return dumped, reply


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(post=st.sampled_from(FEED), reach_a=reach, reach_b=reach, metrics_a=metrics, metrics_b=metrics, salt=st.uuids())
def test_posts_differing_only_in_reach_give_identical_tickets_and_replies(
    tmp_path: Path, post: dict, reach_a: dict, reach_b: dict, metrics_a: dict, metrics_b: dict, salt: object
) -> None:
    engines = [make_engine(f"sqlite:///{tmp_path / f'{name}.db'}") for name in ("a", "b")]
    for engine in engines:
        migrate(engine)
    results = []
    for engine, author_reach, post_metrics in zip(engines, (reach_a, reach_b), (metrics_a, metrics_b), strict=True):
        payload = copy.deepcopy(post)
        payload["id"] = f"{post['id']}-{salt}"
        payload["author"].update(author_reach)
        payload["public_metrics"] = post_metrics
        results.append(_ticketed(engine, payload))
    for engine in engines:
        engine.dispose()
    assert results[0] == results[1]
