"""The reach-blind property's check, tested: with the stripping removed from an adapter, it finds the difference."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from fairdesk.listener import sample as sample_adapter
from fairdesk.listener.base import Mention
from fairdesk.listener.bluesky import BlueskyAdapter
from fairdesk.listener.x import XAdapter
from tests.fakes.x_server import FakeXServer
from tests.reach.harness import HELPDESKS, observe, reach_difference
from tests.reach.platforms import Scenario, bluesky_platform, sample_platform, volunteer_reach, x_platform

SCENARIO = Scenario(text="@fairdesk_demo my router is broken, still dead after 3 days", followup="still waiting")
SMALL = {
    "followers": 3,
    "following": 10,
    "listed": 0,
    "verified": False,
    "verified_type": "none",
    "display_name": "Maria",
    "bio": "",
    "likes": 0,
    "reposts": 0,
    "replies": 0,
    "impressions": 12,
}
LOUD = SMALL | {"followers": 9_000_000, "verified": True, "verified_type": "blue", "likes": 52_000, "reposts": 9000}


def test_the_check_passes_a_pipeline_that_strips_reach() -> None:
    diff, tickets = reach_difference(sample_platform(SCENARIO, "ok"), SMALL, LOUD)
    assert (diff, tickets) == ("", 1)


def test_the_check_counts_no_ticket_for_a_post_that_is_no_complaint() -> None:
    # The property asserts tickets == 1, so two empty results cannot pass it.
    quiet = Scenario(text="@fairdesk_demo thanks, lovely day", followup="cheers")
    assert reach_difference(sample_platform(quiet, "q"), SMALL, LOUD) == ("", 0)


def _leaky_sample_to_mention(field: str) -> Any:
    real = sample_adapter.to_mention

    def to_mention(payload: dict[str, Any], **kw: Any) -> Mention:
        mention = real(payload, **kw)
        author = payload["author"]
        if field == "text":  # a follower count copied into what the customer said
            return dataclasses.replace(mention, text=f"{mention.text} ({author['followers_count']} followers)")
        # a verified mark carried in the handle
        return dataclasses.replace(mention, author_handle=mention.author_handle + ("_v" if author["verified"] else ""))

    return to_mention


@pytest.mark.parametrize("field", ["text", "author_handle"])
@pytest.mark.parametrize("helpdesk", HELPDESKS)
def test_the_check_finds_reach_a_sample_adapter_lets_through(
    monkeypatch: pytest.MonkeyPatch, field: str, helpdesk: str
) -> None:
    monkeypatch.setattr(sample_adapter, "to_mention", _leaky_sample_to_mention(field))
    diff, tickets = reach_difference(sample_platform(SCENARIO, f"leak-{field}"), SMALL, LOUD, [helpdesk])
    assert tickets == 1
    assert diff
    if field == "text":  # the check sees the leak in what the helpdesk was sent, not only in fairdesk's own rows
        platform = sample_platform(SCENARIO, "leak-helpdesk")
        sent = [json.loads(observe(platform, r, [helpdesk]).data)["helpdesk_requests"] for r in (SMALL, LOUD)]
        assert sent[0] != sent[1]
        assert "9000000 followers" in json.dumps(sent[1], ensure_ascii=False)


@pytest.fixture
def x_server() -> Iterator[FakeXServer]:
    with FakeXServer() as server:
        yield server


def test_the_check_finds_x_metrics_the_adapter_lets_through(
    x_server: FakeXServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    volunteer_reach(monkeypatch)
    real = XAdapter._mention

    def leaky(self: XAdapter, tweet: Any, handles: Any, found_by: Any) -> Mention:
        mention = real(self, tweet, handles, found_by)
        return dataclasses.replace(mention, text=f"{mention.text} [{tweet['public_metrics']['like_count']} likes]")

    monkeypatch.setattr(XAdapter, "_mention", leaky)
    platform, retire = x_platform(x_server, SCENARIO, "leakx")
    try:
        diff, tickets = reach_difference(platform, SMALL, LOUD, ["webhook"])
    finally:
        retire()
    assert tickets == 1
    assert "52000 likes" in diff


def test_the_check_finds_bluesky_counts_the_adapter_lets_through(monkeypatch: pytest.MonkeyPatch) -> None:
    real = BlueskyAdapter._to_mention

    def leaky(self: BlueskyAdapter, post: Any, kind: Any) -> Mention | None:
        mention = real(self, post, kind)
        return mention and dataclasses.replace(mention, text=f"{mention.text} [{post.like_count} likes]")

    monkeypatch.setattr(BlueskyAdapter, "_to_mention", leaky)
    diff, tickets = reach_difference(bluesky_platform(SCENARIO, 77), SMALL, LOUD, ["zendesk"])
    assert tickets == 1
    assert "52000 likes" in diff
