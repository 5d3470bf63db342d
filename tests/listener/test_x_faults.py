"""XAdapter under faults: rate limits honoured before the call, bounded retries, errors translated at the boundary."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from fairdesk.listener.base import AuthFailed, FoundBy, Mention, RateLimited, TransientError
from fairdesk.listener.x import XAdapter
from tests.fakes.x_server import FakeXServer, Fault

MakeAdapter = Callable[..., XAdapter]  # the x_adapter_with fixture


def _mention(post_id: str) -> Mention:
    return Mention("x", "brand", post_id, "1", "dana_k", "@acme_support hi", datetime.now(UTC), "https://x.com/d/1")


def test_exhausted_window_is_honoured_without_calling_x(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    x_server.set_rate_limit("mentions", limit=1, window_seconds=2)
    post = x_server.post("dana_k", "@acme_support hi")
    first = x_adapter.fetch(None)  # uses the window's only request: remaining 0, reset in <= 2 s
    assert [m.post_id for m in first.mentions] == [post]

    with pytest.raises(RateLimited) as raised:
        x_adapter.fetch(first.cursor)

    assert 0 < raised.value.retry_after <= 3
    assert len(x_server.requests("mentions")) == 1  # the server saw no call before the reset
    time.sleep(raised.value.retry_after)
    assert x_adapter.fetch(first.cursor).mentions == ()
    assert [r.status for r in x_server.requests("mentions")] == [200, 200]


@pytest.mark.parametrize("legacy", [False, True], ids=["problem", "legacy-code-88"])
def test_429_raises_rate_limited_with_the_reset_and_blocks_until_then(
    x_server: FakeXServer, x_adapter: XAdapter, legacy: bool
) -> None:
    x_server.inject("mentions", Fault.rate_limited(reset_in=30, legacy=legacy))

    with pytest.raises(RateLimited) as raised:
        x_adapter.fetch(None)
    assert 28 < raised.value.retry_after <= 31
    with pytest.raises(RateLimited):
        x_adapter.fetch(None)

    assert [r.status for r in x_server.requests("mentions")] == [429]  # one call, never retried into the limit


def test_rate_limits_are_remembered_per_endpoint(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    x_server.inject("mentions", Fault.rate_limited(reset_in=30))
    with pytest.raises(RateLimited):
        x_adapter.fetch(None)
    mention = x_server.post("dana_k", "@acme_support hi")
    # Replies use another endpoint, whose window is open.
    assert x_adapter.find_reply(_mention(mention)) is None


def test_server_errors_are_retried_within_the_call(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    post = x_server.post("dana_k", "@acme_support hi")
    x_server.inject("mentions", Fault.error(503), Fault.error(500))

    batch = x_adapter.fetch(None)

    assert [m.post_id for m in batch.mentions] == [post]
    assert [r.status for r in x_server.requests("mentions")] == [503, 500, 200]


def test_persistent_server_errors_become_transient_after_a_bounded_number_of_tries(
    x_server: FakeXServer, x_adapter: XAdapter
) -> None:
    x_server.inject("mentions", *[Fault.error(503)] * 10)
    with pytest.raises(TransientError, match="503"):
        x_adapter.fetch(None)
    assert len(x_server.requests("mentions")) == 3  # the fixture's RetryPolicy(attempts=3)


def test_timeouts_and_dropped_connections_are_retried(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    adapter = x_adapter_with(timeout=0.3)
    post = x_server.post("dana_k", "@acme_support hi")
    x_server.inject("mentions", Fault.slow(1.0, process=False), Fault.disconnect())

    batch = adapter.fetch(None)

    assert [m.post_id for m in batch.mentions] == [post]
    assert len(x_server.requests("mentions")) == 3


def test_timeouts_that_persist_become_transient(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    adapter = x_adapter_with(timeout=0.3)
    x_server.inject("mentions", *[Fault.slow(1.0, process=False)] * 3)
    with pytest.raises(TransientError, match="timed out"):
        adapter.fetch(None)
    assert len(x_server.requests("mentions")) == 3


def test_refused_credentials_are_auth_failed(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    adapter = x_adapter_with(bearer_token=SecretStr("AAAA-wrong"))
    with pytest.raises(AuthFailed, match="401"):
        adapter.fetch(None)
    assert [r.status for r in x_server.requests("mentions")] == [401]  # not retried


def test_a_wrong_oauth_secret_fails_signature_verification(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    adapter = x_adapter_with(user_id=None, consumer_secret=SecretStr("not-the-secret"))
    with pytest.raises(AuthFailed):
        adapter.fetch(None)
    assert [(r.endpoint, r.status) for r in x_server.requests()] == [("me", 401)]


def test_forbidden_read_is_auth_failed(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    x_server.inject("mentions", Fault.error(403))
    with pytest.raises(AuthFailed, match="403"):
        x_adapter.fetch(None)


def test_malformed_json_is_transient_and_the_cursor_survives(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    cursor = x_server.post("dana_k", "@acme_support first")
    post = x_server.post("dana_k", "@acme_support second")
    x_server.inject("mentions", Fault.malformed())

    with pytest.raises(TransientError, match="malformed"):
        x_adapter.fetch(cursor)

    # The daemon keeps the old cursor; the next poll gets the same posts.
    batch = x_adapter.fetch(cursor)
    assert [m.post_id for m in batch.mentions] == [post] and batch.cursor == post


def test_a_broken_search_query_is_logged_once_and_never_holds_up_mentions(
    x_server: FakeXServer, x_adapter_with: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = x_adapter_with(search_query="acme foo:bar")
    post = x_server.post("dana_k", "@acme_support hi")

    with caplog.at_level(logging.INFO, logger="fairdesk.listener.x"):
        first = adapter.fetch(None)
        second = adapter.fetch(first.cursor)

    assert [m.post_id for m in first.mentions] == [post] and second.mentions == ()
    assert json.loads(first.cursor) == {"mentions": post, "search": None}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "invalid field 'foo'" in errors[0].getMessage()
    assert [r.status for r in x_server.requests("search")] == [400, 400]


def test_a_rate_limited_search_skips_a_poll_and_keeps_its_cursor(
    x_server: FakeXServer, x_adapter_with: MakeAdapter
) -> None:
    adapter = x_adapter_with(search_query="acme")
    hit = x_server.post("lee_t", "acme is slow")
    cursor = adapter.fetch(None).cursor
    assert json.loads(cursor) == {"mentions": None, "search": hit}
    x_server.inject("search", Fault.rate_limited(reset_in=30))
    post = x_server.post("dana_k", "@acme_support acme broke it")

    limited = adapter.fetch(cursor)
    during = adapter.fetch(limited.cursor)

    assert [m.post_id for m in limited.mentions] == [post]
    assert json.loads(limited.cursor) == {"mentions": post, "search": hit}  # search resumes from where it was
    assert during.mentions == ()
    assert len(x_server.requests("search")) == 2  # the first poll's, and the 429; none while the window is shut


def test_a_rate_limited_mentions_timeline_does_not_stop_search(
    x_server: FakeXServer, x_adapter_with: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    now = [time.time()]
    adapter = x_adapter_with(search_query="acme", clock=lambda: now[0])
    seed = x_server.post("dana_k", "@acme_support hello")
    seed_hit = x_server.post("lee_t", "acme hello")
    cursor = adapter.fetch(None).cursor
    assert json.loads(cursor) == {"mentions": seed, "search": seed_hit}
    x_server.inject("mentions", Fault.rate_limited(reset_in=30))
    mention = x_server.post("dana_k", "@acme_support my order never arrived")
    hit = x_server.post("sam_p", "acme billing is broken")

    with caplog.at_level(logging.INFO, logger="fairdesk.listener.x"):
        limited = adapter.fetch(cursor)
        later = x_server.post("kim", "acme support line is down")
        during = adapter.fetch(limited.cursor)  # the mentions window is still shut: only search is asked

    assert [(m.post_id, m.found_by) for m in limited.mentions] == [(hit, FoundBy.SEARCH)]
    assert json.loads(limited.cursor) == {"mentions": seed, "search": hit}  # mentions resume where they stopped
    assert [(m.post_id, m.found_by) for m in during.mentions] == [(later, FoundBy.SEARCH)]
    assert [r.status for r in x_server.requests("mentions")] == [200, 429]
    assert [r.status for r in x_server.requests("search")] == [200, 200, 200]
    skipped = [r for r in caplog.records if "mentions" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(skipped) == 1  # logged once, when the state changed

    # The window reopens: the mentions skipped meanwhile arrive, from the cursor they kept.
    x_server.set_rate_limit("mentions", limit=450, window_seconds=900)
    now[0] += 60
    after = adapter.fetch(during.cursor)
    assert [(m.post_id, m.found_by) for m in after.mentions] == [(mention, FoundBy.MENTION)]
    assert json.loads(after.cursor) == {"mentions": mention, "search": later}


def test_fetch_is_rate_limited_only_when_every_stream_is_with_the_soonest_reset(
    x_server: FakeXServer, x_adapter_with: MakeAdapter
) -> None:
    adapter = x_adapter_with(search_query="acme")
    x_server.post("dana_k", "@acme_support hello")
    x_server.inject("mentions", Fault.rate_limited(reset_in=40))
    x_server.inject("search", Fault.rate_limited(reset_in=20))

    with pytest.raises(RateLimited) as raised:
        adapter.fetch(None)

    assert 18 < raised.value.retry_after <= 21  # the search window reopens first
    assert [(r.endpoint, r.status) for r in x_server.requests()] == [("mentions", 429), ("search", 429)]


def test_without_search_a_rate_limited_mentions_timeline_still_raises(
    x_server: FakeXServer, x_adapter: XAdapter
) -> None:
    x_server.inject("mentions", Fault.rate_limited(reset_in=30))
    with pytest.raises(RateLimited):
        x_adapter.fetch(None)
