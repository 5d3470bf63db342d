"""XAdapter.fetch through the unmodified tweepy.Client over HTTP against the fake X server."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from fairdesk.config.settings import Settings, XAccount
from fairdesk.listener.base import MENTION_FIELDS, Adapter, FoundBy, Mention, MentionKind
from fairdesk.listener.x import PLATFORM, TWEET_FIELDS, XAdapter, make_x_adapter
from tests.fakes.x_server import FakeXServer

# What could tell a poster's reach: never asked for (user fields), never asked for (post metrics).
USER_REACH_FIELDS = {
    "public_metrics",
    "verified",
    "verified_type",
    "verified_followers_count",
    "is_identity_verified",
    "subscription",
    "subscription_type",
    "affiliation",
    "description",
    "location",
    "profile_image_url",
    "profile_banner_url",
    "created_at",
    "url",
    "entities",
    "pinned_tweet_id",
    "most_recent_tweet_id",
    "protected",
    "parody",
    "connection_status",
    "receives_your_dm",
    "withheld",
}
TWEET_REACH_FIELDS = {"public_metrics", "non_public_metrics", "organic_metrics", "promoted_metrics"}

MakeAdapter = Callable[..., XAdapter]  # the x_adapter_with fixture


def _post_many(x: FakeXServer, count: int, start: datetime | None = None) -> list[str]:
    start = start or datetime.now(UTC) - timedelta(hours=2)
    return [
        x.post(f"customer{i % 7}", f"@acme_support problem number {i}", created_at=start + timedelta(seconds=i))
        for i in range(count)
    ]


def test_mentions_become_mentions(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    when = datetime(2026, 11, 20, 8, 30, 15, 123000, tzinfo=UTC)
    x_server.add_user("dana_k", followers_count=1_200_000, verified=True)
    post_id = x_server.post("dana_k", "@acme_support my order #4411 never arrived", created_at=when, lang="en")

    batch = x_adapter.fetch(None)

    assert isinstance(x_adapter, Adapter)
    (m,) = batch.mentions
    assert m == Mention(
        platform="x",
        account="brand",
        post_id=post_id,
        author_id=x_server.user("dana_k").id,
        author_handle="dana_k",
        text="@acme_support my order #4411 never arrived",
        created_at=when,
        url=f"https://x.com/dana_k/status/{post_id}",
        kind=MentionKind.MENTION,
        found_by=FoundBy.MENTION,
        addresses_account=True,
        from_account=False,
        reply_to_id=None,
        conversation_id=post_id,
        lang="en",
    )
    assert m.created_at.tzinfo is not None
    assert batch.cursor == post_id and batch.gap is False


def test_batch_is_oldest_first_and_follows_pagination_to_the_end(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    first = _post_many(x_server, 3)
    cursor = x_adapter.fetch(None).cursor
    assert cursor == first[-1]
    later = _post_many(x_server, 250, start=datetime.now(UTC) - timedelta(minutes=30))
    x_server.clear_log()

    batch = x_adapter.fetch(cursor)

    assert [m.post_id for m in batch.mentions] == later
    assert batch.cursor == later[-1] and batch.gap is False
    pages = x_server.requests("mentions")
    assert len(pages) == 3  # 100 + 100 + 50
    assert all(p.query["since_id"] == cursor and p.query["max_results"] == "100" for p in pages)
    assert "pagination_token" not in pages[0].query
    assert pages[1].query["pagination_token"] and pages[2].query["pagination_token"]


def test_first_poll_takes_only_the_newest_page(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    ids = _post_many(x_server, 130)

    batch = x_adapter.fetch(None)

    assert [m.post_id for m in batch.mentions] == ids[-100:]
    assert batch.cursor == ids[-1]
    assert len(x_server.requests("mentions")) == 1


def test_fetch_is_idempotent_per_cursor(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    cursor = x_adapter.fetch(None).cursor
    assert cursor is None  # nothing yet: no starting point either
    ids = _post_many(x_server, 4)

    once, twice = x_adapter.fetch(cursor), x_adapter.fetch(cursor)

    assert once == twice
    assert [m.post_id for m in once.mentions] == ids
    after = x_adapter.fetch(once.cursor)
    assert after.mentions == () and after.cursor == once.cursor  # an empty poll keeps the cursor


def test_own_posts_reposts_quotes_and_replies_are_flagged(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    root = x_server.post("dana_k", "@acme_support the app crashes on login")
    own = x_server.post("acme_support", "Sorry @dana_k, we are on it. cc @acme_support team")
    repost = x_server.post("fan_1", retweet=own)
    quote = x_server.post("lee_t", "@acme_support same here", quote=own)
    reply = x_server.post("dana_k", "@acme_support still crashing today", reply_to=own)

    by_id = {m.post_id: m for m in x_adapter.fetch(None).mentions}

    assert by_id[root].kind is MentionKind.MENTION and not by_id[root].from_account
    assert by_id[own].from_account is True
    assert by_id[repost].kind is MentionKind.REPOST and by_id[repost].addresses_account is False
    assert by_id[quote].kind is MentionKind.QUOTE
    assert by_id[reply].kind is MentionKind.REPLY
    assert by_id[reply].reply_to_id == own
    assert by_id[reply].conversation_id == x_server.tweet(own).conversation_id


def test_reply_in_thread_carries_its_parent_and_conversation(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    root = x_server.post("dana_k", "@acme_support my router is broken")
    follow_up = x_server.post("dana_k", "@acme_support and now the TV too", reply_to=root)

    m = {m.post_id: m for m in x_adapter.fetch(None).mentions}[follow_up]

    assert m.kind is MentionKind.REPLY and m.reply_to_id == root and m.conversation_id == root


def test_keyword_hits_are_found_by_search_with_a_two_stream_cursor(
    x_server: FakeXServer, x_adapter_with: MakeAdapter
) -> None:
    adapter = x_adapter_with(search_query="acme -is:retweet")
    mention = x_server.post("dana_k", "@acme_support acme broke my order")  # matches the query: left to mentions
    hit = x_server.post("lee_t", "acme billing is a mess again")
    addressed_hit = x_server.post("sam_p", "acme why @ACME_SUPPORT never answers")  # handles match in any case
    x_server.post("other", "nothing to see")

    batch = adapter.fetch(None)

    by_id = {m.post_id: m for m in batch.mentions}
    assert set(by_id) == {mention, hit, addressed_hit}
    assert by_id[mention].found_by is FoundBy.MENTION
    assert by_id[addressed_hit].found_by is FoundBy.MENTION
    assert by_id[hit].found_by is FoundBy.SEARCH and by_id[hit].addresses_account is False
    assert [m.post_id for m in batch.mentions] == sorted(by_id, key=int)
    assert json.loads(batch.cursor) == {"mentions": addressed_hit, "search": hit}

    newer = x_server.post("kim", "acme support line is down")
    again = adapter.fetch(batch.cursor)
    assert [(m.post_id, m.found_by) for m in again.mentions] == [(newer, FoundBy.SEARCH)]
    assert json.loads(again.cursor) == {"mentions": addressed_hit, "search": newer}
    assert x_server.requests("search")[-1].query["since_id"] == hit


def test_search_leaves_mentions_to_the_mentions_timeline(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    adapter = x_adapter_with(search_query="acme OR router")
    seed = x_server.post("dana_k", "@acme_support hello")
    seed_hit = x_server.post("lee_t", "acme hello")
    cursor = adapter.fetch(None).cursor
    mentions = [x_server.post(f"c{i}", f"@acme_support acme router {i} is broken") for i in range(150)]
    hit = x_server.post("sam_p", "my router from acme is broken")
    x_server.clear_log()

    batch = adapter.fetch(cursor)

    assert [(m.post_id, m.found_by) for m in batch.mentions] == [
        *((post_id, FoundBy.MENTION) for post_id in mentions),
        (hit, FoundBy.SEARCH),
    ]
    assert json.loads(batch.cursor) == {"mentions": mentions[-1], "search": hit}
    # One search page with the one keyword hit: the 150 mentions are not read (and billed) a second time.
    (search,) = x_server.requests("search")
    assert search.query["query"] == "(acme OR router) -@acme_support"  # grouped: the exclusion binds the whole OR
    assert search.query["since_id"] == seed_hit and [t["id"] for t in search.response["data"]] == [hit]
    assert len(x_server.requests("mentions")) == 2
    assert seed not in {m.post_id for m in batch.mentions}


def test_the_fake_reads_grouping_and_handle_exclusion_as_x_does(x_server: FakeXServer) -> None:
    import requests

    mention = x_server.post("dana_k", "@ACME_SUPPORT acme router broke")
    hit = x_server.post("lee_t", "acme router broke")
    word = x_server.post("sam_p", "router from acme_support broke")  # the name as a word is not a mention

    def search(query: str) -> set[str]:
        response = requests.get(
            f"{x_server.url}/2/tweets/search/recent",
            params={"query": query},
            headers={"Authorization": f"Bearer {x_server.credentials.bearer_token}"},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return {t["id"] for t in response.json().get("data", ())}

    assert search("(acme OR router) -@acme_support") == {hit, word}
    assert search("acme OR router -@acme_support") == {mention, hit, word}  # AND binds tighter than OR
    assert search("@acme_support") == {mention}


def test_a_search_query_too_long_for_x_with_the_exclusion_is_refused_at_start(x_account: XAccount) -> None:
    from fairdesk.config.settings import ConfigError

    room = 512 - len(f"() -@{x_account.handle}")
    XAdapter("brand", x_account.model_copy(update={"search_query": "a" * room})).close()
    with pytest.raises(ConfigError, match=r"x\.brand\.search_query.*512"):
        XAdapter("brand", x_account.model_copy(update={"search_query": "a" * (room + 1)}))


def test_the_longest_search_query_x_allows_is_sent_whole(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    query = "acme " + "x" * (512 - len("(acme ) -@acme_support"))
    adapter = x_adapter_with(search_query=query)

    adapter.fetch(None)

    (search,) = x_server.requests("search")
    assert search.status == 200 and len(search.query["query"]) == 512


def test_search_cursor_older_than_seven_days_restarts_and_reports_a_gap(
    x_server: FakeXServer, x_adapter_with: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = x_adapter_with(search_query="acme")
    stale = x_server.post("old", "acme long ago", created_at=datetime.now(UTC) - timedelta(days=9))
    fresh = x_server.post("new", "acme today")

    with caplog.at_level(logging.WARNING, logger="fairdesk.listener.x"):
        batch = adapter.fetch(json.dumps({"mentions": None, "search": stale}))

    assert batch.gap is True and [m.post_id for m in batch.mentions] == [fresh]
    assert json.loads(batch.cursor)["search"] == fresh
    assert "7-day" in caplog.text


def test_more_new_mentions_than_x_keeps_is_a_gap(
    x_server: FakeXServer, x_adapter: XAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    cursor = x_server.post("early", "@acme_support hello", created_at=datetime.now(UTC) - timedelta(hours=3))
    ids = _post_many(x_server, 850)

    with caplog.at_level(logging.WARNING, logger="fairdesk.listener.x"):
        batch = x_adapter.fetch(cursor)

    assert batch.gap is True
    assert [m.post_id for m in batch.mentions] == ids[-800:]  # the reachable 800, and the cursor moves past them
    assert batch.cursor == ids[-1]
    assert "gap" in caplog.text


def test_an_unreadable_cursor_restarts_from_now_and_reports_a_gap(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    post = x_server.post("dana_k", "@acme_support hi")
    batch = x_adapter.fetch("{not json")
    assert batch.gap is True and [m.post_id for m in batch.mentions] == [post]


def test_reach_fields_are_never_requested_nor_kept(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    adapter = x_adapter_with(search_query="acme", user_id=None)
    x_server.add_user(
        "big_star",
        followers_count=9_876_543,
        following_count=12,
        listed_count=4321,
        verified=True,
        verified_type="blue",
        description="famous",
        location="Paris",
    )
    root = x_server.post("big_star", "@acme_support acme lost my bag")
    x_server.post("big_star", "acme again", reply_to=root)
    batch = adapter.fetch(None)
    adapter.find_reply(batch.mentions[0])

    reads = [r for r in x_server.requests() if r.method == "GET"]
    assert {r.endpoint for r in reads} == {"me", "mentions", "search", "timeline"}
    for r in reads:
        assert not r.fields("user.fields") & USER_REACH_FIELDS, r.query
        assert not r.fields("tweet.fields") & TWEET_REACH_FIELDS, r.query
        assert r.fields("expansions") <= {"author_id"}
        assert "9876543" not in json.dumps(r.query)
    mention_reads = x_server.requests("mentions") + x_server.requests("search")
    assert all(r.fields("tweet.fields") == set(TWEET_FIELDS) for r in mention_reads)
    assert all("user.fields" not in r.query for r in mention_reads)

    # Mention's created_at and url are the post's own, not the profile's.
    assert set(MENTION_FIELDS) & (USER_REACH_FIELDS | TWEET_REACH_FIELDS | {"followers_count", "raw"}) == {
        "created_at",
        "url",
    }
    for m in batch.mentions:
        values = json.dumps(dataclasses.asdict(m), default=str)
        assert "9876543" not in values and "Paris" not in values and "famous" not in values


def test_reads_leave_out_user_fields_and_still_get_the_handle(
    x_server: FakeXServer, x_adapter_with: MakeAdapter
) -> None:
    # X sends id, name and username for every expanded user unasked; user.fields=username only lengthened each read.
    adapter = x_adapter_with(search_query="acme")
    mentioned = x_server.post("dana_k", "@acme_support my order never arrived")
    hit = x_server.post("lee_t", "acme billing is a mess")

    by_id = {m.post_id: m for m in adapter.fetch(None).mentions}

    assert (by_id[mentioned].author_handle, by_id[hit].author_handle) == ("dana_k", "lee_t")
    assert by_id[mentioned].url == f"https://x.com/dana_k/status/{mentioned}"
    reads = x_server.requests("mentions") + x_server.requests("search")
    assert len(reads) == 2 and all("user.fields" not in r.query for r in reads)
    assert all(r.fields("expansions") == {"author_id"} for r in reads)


def test_the_fake_would_have_served_reach_had_it_been_asked(x_server: FakeXServer) -> None:
    # Guards the test above: absence of reach comes from the adapter's requests, not from a fake that never sends it.
    import requests

    x_server.add_user("big_star", followers_count=9_876_543, verified=True)
    x_server.post("big_star", "@acme_support hi")
    response = requests.get(
        f"{x_server.url}/2/users/{x_server.brand.id}/mentions",
        params={"expansions": "author_id", "user.fields": "public_metrics,verified"},
        headers={"Authorization": f"Bearer {x_server.credentials.bearer_token}"},
        timeout=5,
    )
    (user,) = response.json()["includes"]["users"]
    assert user["public_metrics"]["followers_count"] == 9_876_543 and user["verified"] is True


def test_brand_user_id_is_looked_up_once_with_users_me(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    adapter = x_adapter_with(user_id=None)
    x_server.post("dana_k", "@acme_support hi")
    adapter.fetch(None)
    adapter.fetch(None)
    (me,) = x_server.requests("me")
    assert me.auth == "oauth1" and me.status == 200
    assert adapter.brand_user_id() == x_server.brand.id
    assert all(r.path == f"/2/users/{x_server.brand.id}/mentions" for r in x_server.requests("mentions"))


def test_requests_reach_the_configured_host_with_x_host_header(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    x_adapter.fetch(None)
    (request,) = x_server.requests("mentions")
    assert request.host == "api.twitter.com" and request.auth == "bearer"


def test_an_unknown_brand_user_id_is_a_permanent_error(x_adapter_with: MakeAdapter) -> None:
    from fairdesk.listener.base import PermanentError

    adapter = x_adapter_with(user_id="42")
    with pytest.raises(PermanentError, match="user_id"):
        adapter.fetch(None)


def test_factory_matches_the_registry_signature(x_account: XAccount, tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, x={"brand": x_account})
    adapter = make_x_adapter("brand", settings.x["brand"], settings)
    assert (adapter.platform, adapter.account) == (PLATFORM, "brand")
    adapter.close()


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"consumer_key": None}, "all four"),
        (
            {
                "bearer_token": None,
                "consumer_key": None,
                "consumer_secret": None,
                "access_token": None,
                "access_token_secret": None,
            },
            "bearer_token",
        ),
        (
            {
                "user_id": None,
                "consumer_key": None,
                "consumer_secret": None,
                "access_token": None,
                "access_token_secret": None,
            },
            "user_id",
        ),
    ],
)
def test_unusable_credentials_are_a_config_error(x_account: XAccount, update: dict, message: str) -> None:
    from fairdesk.config.settings import ConfigError

    with pytest.raises(ConfigError, match=message):
        XAdapter("brand", x_account.model_copy(update=update))


def test_listen_only_account_reads_with_the_bearer_token(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    keys = {k: None for k in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")}
    adapter = x_adapter_with(**keys)
    post = x_server.post("dana_k", "@acme_support hi")
    assert [m.post_id for m in adapter.fetch(None).mentions] == [post]


def test_deleted_and_hidden_posts_are_reported_for_the_deletion_sweep(
    x_server: FakeXServer, x_adapter: XAdapter
) -> None:
    kept = x_server.post("dana_k", "@acme_support my router is broken")
    deleted = x_server.post("lee_t", "@acme_support angry words")
    x_server.add_user("private_p")
    hidden = x_server.post("private_p", "@acme_support help")
    x_server.delete(deleted)
    x_server.user("private_p").protected = True

    assert x_adapter.deleted_posts([kept, deleted, hidden, "at://not-x/1"]) == {deleted, hidden}
    (lookup,) = x_server.requests("lookup")
    assert lookup.query["ids"].split(",") == sorted([kept, deleted, hidden]) and lookup.auth == "bearer"


def test_the_deletion_check_asks_for_100_posts_at_a_time(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    ids = _post_many(x_server, 230)
    assert x_adapter.deleted_posts(ids) == set()
    assert [len(r.query["ids"].split(",")) for r in x_server.requests("lookup")] == [100, 100, 30]
