"""The sample adapter replays the bundled feed as if its posts were written just before each poll releases them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fairdesk.config.settings import SampleAccount
from fairdesk.listener.sample import BUNDLED_FEED, SampleAdapter, load_feed

PUBLIC_URL = "http://127.0.0.1:8000"
STARTED = datetime(2031, 5, 17, 8, 0, tzinfo=UTC)  # far from the feed's own dates (2026-11-01)


class Clock:
    """A hand-moved clock: ``clock.now`` is what the adapter reads; ``clock.tick(s)`` moves it on."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _adapter(tmp_path: Path, clock: Clock, account: SampleAccount | None = None) -> SampleAdapter:
    return SampleAdapter(
        "demo",
        account or SampleAccount(),
        replies_path=tmp_path / "replies.jsonl",
        public_url=PUBLIC_URL,
        clock=clock,
    )


def test_bundled_feed_posts_are_dated_just_before_the_poll_that_releases_them(tmp_path: Path) -> None:
    clock = Clock(STARTED)
    adapter = _adapter(tmp_path, clock, SampleAccount(poll_seconds=2.0, per_poll=3))
    released, cursor = [], None
    while True:
        batch = adapter.fetch(cursor)
        if not batch.mentions:
            break
        for mention in batch.mentions:
            assert clock.now - timedelta(seconds=2) < mention.created_at <= clock.now  # since the previous poll
        released.extend(batch.mentions)
        cursor = batch.cursor
        clock.tick(2.0)
    assert len(released) == len(load_feed(BUNDLED_FEED)) == 60
    assert cursor == "60"  # the cursor is still the index of the next post
    times = [m.created_at for m in released]
    assert times == sorted(times) and len(set(times)) == len(times)  # feed order kept: replies after their posts
    assert times[0] > STARTED - timedelta(seconds=2) and times[-1] <= STARTED + timedelta(seconds=40)


def test_the_demo_posts_are_recent_whatever_day_it_is(tmp_path: Path) -> None:
    adapter = SampleAdapter(
        "demo", SampleAccount(), replies_path=tmp_path / "replies.jsonl", public_url=PUBLIC_URL
    )  # the real clock, as `fairdesk run` wires it
    before = datetime.now(UTC)
    mentions = adapter.fetch(None).mentions
    assert mentions and all(before - timedelta(seconds=2) < m.created_at <= datetime.now(UTC) for m in mentions)


def test_fetching_the_same_cursor_again_gives_the_same_posts_and_dates(tmp_path: Path) -> None:
    clock = Clock(STARTED)
    adapter = _adapter(tmp_path, clock)
    first = adapter.fetch("6")
    clock.tick(30)
    again = adapter.fetch("6")  # a poll whose transaction failed asks again: same answer
    assert again == first


def test_polls_closer_than_the_pace_still_date_posts_in_feed_order(tmp_path: Path) -> None:
    clock = Clock(STARTED)
    adapter = _adapter(tmp_path, clock, SampleAccount(per_poll=20))
    times = [m.created_at for cursor in ("0", "20", "40") for m in adapter.fetch(cursor).mentions]
    assert len(times) == 60 and times == sorted(times) and len(set(times)) == 60
    assert all(t <= STARTED + timedelta(seconds=1) for t in times)


def test_history_holds_the_whole_feed_with_released_posts_as_they_were_released(tmp_path: Path) -> None:
    clock = Clock(STARTED)
    adapter = _adapter(tmp_path, clock)
    released = adapter.fetch(None).mentions
    clock.tick(600)
    everything = adapter.history(STARTED - timedelta(hours=1)).mentions
    assert len(everything) == 60
    assert everything[: len(released)] == released
    rest = [m.created_at for m in everything[len(released) :]]
    assert rest == sorted(rest) and released[-1].created_at < rest[0] and rest[-1] <= clock.now
    assert adapter.history(clock.now + timedelta(seconds=1)).mentions == []
    # what history dated is what a later poll releases: the ledger and the poll agree
    assert adapter.fetch(str(len(released))).mentions == everything[len(released) : 2 * len(released)]


def test_a_configured_feed_keeps_its_own_dates(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    post = load_feed(BUNDLED_FEED)[0]
    feed.write_text(json.dumps(post) + "\n", encoding="utf-8")
    adapter = _adapter(tmp_path, Clock(STARTED), SampleAccount(feed=feed))
    (mention,) = adapter.fetch(None).mentions
    assert mention.created_at == datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
