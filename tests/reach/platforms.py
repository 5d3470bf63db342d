"""Platforms whose raw payloads carry reach: sample feed JSON lines, X wire JSON, Bluesky records and notifications.

Each builds, for some reach, the real adapter reading the scenario's two posts (a complaint, and a follow-up by the
same author in its thread) as that platform would deliver them with that reach in them.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from pydantic import SecretStr

from fairdesk.config.settings import BlueskyAccount, SampleAccount, XAccount
from fairdesk.listener.bluesky import BlueskyAdapter
from fairdesk.listener.sample import SampleAdapter
from fairdesk.listener.x import XAdapter
from tests.fakes.fixtures import FAST_RETRY, FAST_TIMEOUT
from tests.fakes.x_server import FakeXServer
from tests.listener.test_bluesky import CUSTOMER_DID, PDS, FakePds
from tests.reach.harness import PUBLIC_URL, Platform, Served

# Posts are dated long before the test runs, so nothing in them can be mistaken for fairdesk's own clock.
POSTED = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)

reach = st.fixed_dictionaries(
    {
        "followers": st.integers(0, 10**9),
        "following": st.integers(0, 10**6),
        "listed": st.integers(0, 10**5),
        "verified": st.booleans(),
        "verified_type": st.sampled_from(["blue", "business", "government", "none"]),
        "display_name": st.text(max_size=30),
        "bio": st.text(max_size=80),
        "likes": st.integers(0, 10**8),
        "reposts": st.integers(0, 10**7),
        "replies": st.integers(0, 10**6),
        "impressions": st.integers(0, 10**10),
    }
)


@dataclass(frozen=True)
class Scenario:
    """A complaint and the author's follow-up in its thread, with their texts and the author's handle."""

    text: str
    followup: str
    handle: str = "maria_k"


# ---------------------------------------------------------------------------------------------------- sample feed


def sample_lines(scenario: Scenario, r: dict[str, Any], salt: str) -> list[dict[str, Any]]:
    """The two posts as the sample feed's JSON lines (listener/data/README.md), reach and all."""
    author = {
        "id": "u1",
        "handle": scenario.handle,
        "display_name": r["display_name"],
        "followers_count": r["followers"],
        "following_count": r["following"],
        "listed_count": r["listed"],
        "verified": r["verified"],
        "verified_type": r["verified_type"],
        "bio": r["bio"],
    }
    metrics = {k: r[v] for k, v in (("like_count", "likes"), ("retweet_count", "reposts"), ("reply_count", "replies"))}
    metrics["impression_count"] = r["impressions"]
    root = {
        "id": f"p-{salt}",
        "created_at": POSTED.isoformat().replace("+00:00", "Z"),
        "kind": "mention",
        "text": scenario.text,
        "lang": "en",
        "author": author,
        "public_metrics": metrics,
        "in_reply_to": None,
        "conversation_id": f"p-{salt}",
        "mentions": ["fairdesk_demo"],
    }
    followup = copy.deepcopy(root) | {
        "id": f"f-{salt}",
        "created_at": (POSTED + timedelta(minutes=3)).isoformat().replace("+00:00", "Z"),
        "kind": "reply",
        "text": scenario.followup,
        "in_reply_to": f"p-{salt}",
    }
    return [root, followup]


def sample_platform(scenario: Scenario, salt: str) -> Platform:
    def serve(r: dict[str, Any]) -> Served:
        folder = Path(tempfile.mkdtemp(prefix="fairdesk-sample-"))
        feed = folder / "feed.jsonl"
        feed.write_text("".join(json.dumps(p) + "\n" for p in sample_lines(scenario, r, salt)), encoding="utf-8")
        adapter = SampleAdapter(
            "demo", SampleAccount(feed=feed, per_poll=1), replies_path=folder / "replies.jsonl", public_url=PUBLIC_URL
        )
        return Served(adapter, lambda: [s["text"] for s in adapter.sent()], lambda: shutil.rmtree(folder))

    return serve


# ---------------------------------------------------------------------------------------------------- X


def volunteer_reach(monkeypatch: Any) -> None:
    """Make the fake X server send every user and post field, asked for or not (as an API change might)."""
    from tests.fakes import x_server

    user_wire, tweet_wire = x_server.FakeUser.wire, x_server.FakeTweet.wire
    every_user = {"created_at", "description", "location", "protected", "public_metrics", "verified", "verified_type"}
    every_user |= {"profile_image_url"}
    every_tweet = {"author_id", "conversation_id", "created_at", "lang", "in_reply_to_user_id", "referenced_tweets"}
    every_tweet |= {"public_metrics", "possibly_sensitive", "reply_settings", "entities"}
    monkeypatch.setattr(x_server.FakeUser, "wire", lambda self, fields: user_wire(self, fields | every_user))
    monkeypatch.setattr(
        x_server.FakeTweet, "wire", lambda self, fields, users: tweet_wire(self, fields | every_tweet, users)
    )


def x_platform(server: FakeXServer, scenario: Scenario, salt: str) -> tuple[Platform, Callable[[], None]]:
    """The scenario posted once on the (shared) fake X server by a new author; each run sets the author's and the
    posts' reach, then reads the very same posts through the real XAdapter. Returns it and a clean-up that deletes
    the posts, so that the next example's first fetch sees only its own."""
    handle = f"u{salt}"[:15]
    user = server.add_user(handle)
    brand = server.brand.username
    root = server.post(handle, f"@{brand} {scenario.text}", created_at=POSTED)
    followup = server.post(
        handle, f"@{brand} {scenario.followup}", reply_to=root, created_at=POSTED + timedelta(minutes=3)
    )
    account = XAccount(
        handle=server.brand.username, user_id=server.brand.id, api_base_url=server.url, **server.account_secrets()
    )

    def serve(r: dict[str, Any]) -> Served:
        for tweet_id in (root, followup):
            tweet = server.tweet(tweet_id)
            tweet.like_count, tweet.retweet_count = r["likes"], r["reposts"]
        user.name, user.description = r["display_name"] or handle, r["bio"]
        user.followers_count, user.following_count, user.listed_count = r["followers"], r["following"], r["listed"]
        user.verified, user.verified_type = r["verified"], r["verified_type"]
        before = {t.id for t in server.posts_by(server.brand.username)}
        adapter = XAdapter("brand", account, timeout=FAST_TIMEOUT, retry=FAST_RETRY)

        def posted() -> list[str]:
            return [t.text for t in server.posts_by(server.brand.username) if t.id not in before]

        def close() -> None:
            adapter.close()
            for t in server.posts_by(server.brand.username):
                if t.id not in before:
                    server.delete(t.id)

        return Served(adapter, posted, close)

    def retire() -> None:
        for tweet_id in (root, followup):
            server.delete(tweet_id)

    return serve, retire


# ---------------------------------------------------------------------------------------------------- Bluesky


class ReachPds(FakePds):
    """The test suite's in-process fake PDS, with the author's profile and the posts' counts set per run."""

    def __init__(self, r: dict[str, Any]) -> None:
        super().__init__()
        self.reach = r

    def _with_reach(self, item: dict[str, Any]) -> None:
        if item["author"]["did"] != CUSTOMER_DID:
            return
        item["author"] |= {
            "displayName": self.reach["display_name"],
            "description": self.reach["bio"],
            "followersCount": self.reach["followers"],
            "followsCount": self.reach["following"],
            "postsCount": self.reach["listed"],
            "avatar": f"https://cdn.example/{self.reach['verified_type']}.jpg",
        }

    def add(self, n: int, reason: str, at: datetime, *, text: str = "hi", reply_to: str | None = None) -> str:
        uri = super().add(n, reason, at, text=text, reply_to=reply_to)
        post = self.posts[uri]
        post |= {"likeCount": self.reach["likes"], "repostCount": self.reach["reposts"]}
        post |= {"replyCount": self.reach["replies"], "quoteCount": self.reach["listed"]}
        self._with_reach(post)
        for notification in self.notifications:
            self._with_reach(notification)
        return uri


def bluesky_platform(scenario: Scenario, number: int) -> Platform:
    def serve(r: dict[str, Any]) -> Served:
        pds = ReachPds(r)
        root = pds.add(number, "mention", POSTED, text=f"@brand.test {scenario.text}")
        pds.add(number + 1, "reply", POSTED + timedelta(minutes=3), text=scenario.followup, reply_to=root)
        settings = BlueskyAccount(handle="brand.test", app_password=SecretStr("app-pass"), service_url=PDS)
        adapter = BlueskyAdapter("main", settings, transport=pds.transport())
        return Served(adapter, lambda: [c["record"]["text"] for c in pds.created], adapter.close)

    return serve


__all__ = ["Scenario", "bluesky_platform", "reach", "sample_platform", "volunteer_reach", "x_platform"]
