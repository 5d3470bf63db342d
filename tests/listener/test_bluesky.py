"""Unit tests of the Bluesky adapter: pure helpers, and the adapter over an in-process fake PDS (no network)."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tenacity import wait_none

from fairdesk.config.settings import DEFAULT_TEMPLATE, BlueskyAccount, Settings
from fairdesk.listener.base import AuthFailed, Mention, MentionKind, PermanentError, RateLimited, Reply, TransientError
from fairdesk.listener.bluesky import BlueskyAdapter, link_facets, make_bluesky_adapter
from fairdesk.listener.bluesky_cursor import LOOKBACK, FetchCursor
from fairdesk.listener.bluesky_records import (
    MAX_GRAPHEMES,
    check_template,
    check_text,
    grapheme_len,
    link_spans,
    reply_rkey,
)
from fairdesk.listener.bluesky_session import FileSessionStore, MemorySessionStore

BRAND_DID = "did:plc:brandbrandbrandbrandbran"
CUSTOMER_DID = "did:plc:customercustomercustomer"
CID = "bafyreibrtlhufsupgrbgnnnt7lrs3l3li5ito7pdsdj2lasz37varf6rpq"
PDS = "https://pds.example"


# ---------------------------------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    "text",
    [
        "Ticket: https://help.example.com/t/abc",
        "😞 sorry! ticket 👉 https://help.example.com/t/abc123",
        "Désolé, café ☕ — voir https://help.example.com/t/xyz. Merci",
        "申し訳ありません。チケット https://help.example.com/t/日本 をご覧ください",
        "👨‍👩‍👧 family (https://help.example.com/t/q1), and 🇫🇷: http://127.0.0.1:8000/t/q2!",
    ],
)
def test_link_spans_are_utf8_byte_offsets_that_cover_exactly_the_url(text: str) -> None:
    spans = link_spans(text)

    assert spans
    for start, end, url in spans:
        assert text.encode("utf-8")[start:end].decode("utf-8") == url
        assert url.startswith("http") and url[-1] not in ".,;:!?)"


def test_link_spans_leave_out_trailing_punctuation_and_find_every_url() -> None:
    spans = link_spans("see (https://a.example/t/1), then https://b.example/t/2.")

    assert [url for _, _, url in spans] == ["https://a.example/t/1", "https://b.example/t/2"]


def test_link_facets_carry_the_url_and_byte_slice() -> None:
    text = "🙏 https://help.example.com/t/abc"

    (facet,) = link_facets(text)

    assert facet.index.byte_start == len("🙏 ".encode())  # 5 bytes, though only 2 characters
    assert facet.index.byte_end == len(text.encode())
    assert facet.features[0].uri == "https://help.example.com/t/abc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("e\u0301", 1),  # e + combining acute
        ("👍🏽", 1),  # emoji + skin tone modifier
        ("👨‍👩‍👧", 1),  # ZWJ sequence of three emoji
        ("🇫🇷🇩🇪", 2),  # two flags = four regional indicators
        ("नमस्ते", 3),
    ],
)
def test_grapheme_len_counts_extended_grapheme_clusters(text: str, expected: int) -> None:
    assert grapheme_len(text) == expected


def test_check_template_accepts_the_default_template() -> None:
    check_template(DEFAULT_TEMPLATE, "https://support.example.com")


def test_check_template_rejects_a_template_whose_longest_reply_is_over_300_graphemes() -> None:
    template = "x" * 250 + " {link}"  # fits with a short link, not with the longest ticket link

    with pytest.raises(ValueError, match="graphemes"):
        check_template(template, "https://support.example.com")


def test_check_template_counts_graphemes_not_code_points() -> None:
    template = "👨‍👩‍👧" * 100 + " {link}"  # 500 code points, 100 graphemes

    check_template(template, "https://s.example")


def test_check_template_rejects_a_long_public_url() -> None:
    with pytest.raises(ValueError, match="public_url"):
        check_template(DEFAULT_TEMPLATE, "https://" + "a" * 200 + ".example")


def test_check_template_names_an_unknown_placeholder() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        check_template("Hi {name}: {link}", "https://s.example")


def test_check_text_rejects_more_than_3000_bytes_even_under_300_graphemes() -> None:
    with pytest.raises(ValueError, match="bytes"):
        check_text("👨‍👩‍👧" * 200)  # 200 graphemes, 3600 bytes


def test_check_text_accepts_exactly_300_graphemes() -> None:
    check_text("é" * MAX_GRAPHEMES)
    with pytest.raises(ValueError):
        check_text("é" * (MAX_GRAPHEMES + 1))


def test_cursor_round_trips() -> None:
    newest = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    cursor = FetchCursor().advanced(newest, [("at://a/app.bsky.feed.post/1", newest - timedelta(seconds=5))])

    again = FetchCursor.decode(cursor.encode())

    assert again == cursor
    assert again.seen("at://a/app.bsky.feed.post/1")
    assert not again.seen("at://a/app.bsky.feed.post/2")


def test_cursor_forgets_posts_older_than_the_lookback_window() -> None:
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    cursor = FetchCursor().advanced(t0, [("at://old", t0), ("at://new", t0)])

    later = cursor.advanced(t0 + LOOKBACK + timedelta(seconds=1), [("at://newer", t0 + LOOKBACK)])

    assert not later.seen("at://old") and not later.seen("at://new")
    assert later.seen("at://newer")


def test_cursor_stores_hashes_not_uris() -> None:
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    uri = "at://did:plc:customercustomercustomer/app.bsky.feed.post/3kabc"

    encoded = FetchCursor().advanced(t0, [(uri, t0)]).encode()

    assert "customer" not in encoded and len(encoded) < 80


@pytest.mark.parametrize("bad", ["", "garbage", "{}", '{"v":99,"t":1,"h":[]}', '{"v":1,"t":"x","h":[]}', "[1]"])
def test_cursor_decode_rejects_what_encode_did_not_make(bad: str) -> None:
    with pytest.raises(ValueError):
        FetchCursor.decode(bad)


def test_file_session_store_writes_mode_0600_and_reads_back(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "data" / "bluesky-main.session")

    assert store.get() is None
    store.set("handle:::did:::a:::r:::pds")
    store.set("handle:::did:::a2:::r2:::pds")

    assert store.get() == "handle:::did:::a2:::r2:::pds"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [p.name for p in store.path.parent.iterdir()] == ["bluesky-main.session"]


def test_factory_keeps_the_session_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bluesky={"main": {"handle": "brand.test"}})

    adapter = make_bluesky_adapter("main", settings.bluesky["main"], settings)

    assert (adapter.platform, adapter.account) == ("bluesky", "main")
    assert adapter._store.path == tmp_path / "bluesky-main.session"  # type: ignore[attr-defined]
    adapter.close()


# ---------------------------------------------------------------------------------------------------- fake PDS


def _jwt(exp: float, sub: str = BRAND_DID) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'ES256K', 'typ': 'at+jwt'})}.{part({'sub': sub, 'exp': int(exp)})}.c2ln"


def _session_string(exp: float, refresh: str = "refresh-1") -> str:
    return ":::".join(["brand.test", BRAND_DID, _jwt(exp), _jwt(time.time() + 86400) + refresh, PDS])


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _author(did: str, handle: str) -> dict[str, Any]:
    # Reach the adapter must drop: display name, avatar, follower counts, labels.
    return {
        "did": did,
        "handle": handle,
        "displayName": "Famous Person",
        "avatar": "https://cdn.example/avatar.jpg",
        "followersCount": 987654,
        "labels": [],
    }


class FakePds:
    """An in-process PDS+AppView: scripted notifications and posts, a session endpoint, per-method request counts."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []  # newest first, like the AppView
        self.posts: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}
        self.overrides: dict[str, Callable[[httpx.Request], httpx.Response | None]] = {}
        self.password = "app-pass"
        self.refresh_ok = True
        self.created: list[dict[str, Any]] = []
        self.page_size_seen: list[int] = []
        self.reasons_asked: list[list[str]] = []

    def add(self, n: int, reason: str, at: datetime, *, text: str = "hi", reply_to: str | None = None) -> str:
        uri = f"at://{CUSTOMER_DID}/app.bsky.feed.post/{n:013d}"
        record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text, "createdAt": _iso(at), "langs": ["de"]}
        if reply_to:
            ref = {"uri": reply_to, "cid": CID}
            record["reply"] = {"root": ref, "parent": ref}
        self.posts[uri] = {
            "uri": uri,
            "cid": CID,
            "author": _author(CUSTOMER_DID, "alice.test"),
            "record": record,
            "indexedAt": _iso(at),
            "likeCount": 4242,
            "repostCount": 99,
        }
        self.notify(uri, reason, at, record)
        return uri

    def notify(self, uri: str, reason: str, at: datetime, record: dict[str, Any] | None = None) -> None:
        self.notifications.append(
            {
                "uri": uri,
                "cid": CID,
                "author": _author(CUSTOMER_DID, "alice.test"),
                "reason": reason,
                "record": record
                or {"$type": "app.bsky.feed.like", "createdAt": _iso(at), "subject": {"uri": uri, "cid": CID}},
                "isRead": False,
                "indexedAt": _iso(at),
            }
        )
        self.notifications.sort(key=lambda n: n["indexedAt"], reverse=True)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        self.counts[method] = self.counts.get(method, 0) + 1
        override = self.overrides.get(method)
        if override is not None:
            response = override(request)
            if response is not None:
                return response
        return getattr(self, "_" + method.replace(".", "_"))(request)

    def _com_atproto_server_createSession(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["password"] != self.password:
            return _error(401, "AuthenticationRequired", "Invalid identifier or password")
        return httpx.Response(200, json=self._session())

    def _com_atproto_server_refreshSession(self, request: httpx.Request) -> httpx.Response:
        if not self.refresh_ok:
            return _error(400, "ExpiredToken", "Token has expired")
        return httpx.Response(200, json=self._session())

    def _session(self) -> dict[str, Any]:
        return {
            "did": BRAND_DID,
            "handle": "brand.test",
            "accessJwt": _jwt(time.time() + 7200),
            "refreshJwt": _jwt(time.time() + 86400),
        }

    def _app_bsky_notification_listNotifications(self, request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params.get("limit", 50))
        self.page_size_seen.append(limit)
        cursor = request.url.params.get("cursor")
        reasons = request.url.params.get_list("reasons")
        self.reasons_asked.append(reasons)
        items = [
            n
            for n in self.notifications
            if (cursor is None or n["indexedAt"] < cursor) and (not reasons or n["reason"] in reasons)
        ]
        page = items[:limit]
        body: dict[str, Any] = {"notifications": page}
        if len(items) > limit:
            body["cursor"] = page[-1]["indexedAt"]
        return httpx.Response(200, json=body)

    def _app_bsky_feed_getPosts(self, request: httpx.Request) -> httpx.Response:
        uris = request.url.params.get_list("uris")
        return httpx.Response(200, json={"posts": [self.posts[u] for u in uris if u in self.posts]})

    def _app_bsky_feed_getPostThread(self, request: httpx.Request) -> httpx.Response:
        uri = request.url.params["uri"]
        if uri not in self.posts:
            return _error(400, "NotFound", f"Post not found: {uri}")
        replies = [
            {"$type": "app.bsky.feed.defs#threadViewPost", "post": self.posts[c["uri"]]}
            for c in self.created
            if c["record"]["reply"]["parent"]["uri"] == uri
        ]
        thread = {"$type": "app.bsky.feed.defs#threadViewPost", "post": self.posts[uri], "replies": replies}
        return httpx.Response(200, json={"thread": thread})

    def _com_atproto_repo_getRecord(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        uri = f"at://{params['repo']}/{params['collection']}/{params['rkey']}"
        if uri not in self.posts:
            return _error(400, "RecordNotFound", f"Could not locate record: {uri}")
        return httpx.Response(200, json={"uri": uri, "cid": CID, "value": self.posts[uri]["record"]})

    def _com_atproto_repo_putRecord(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        uri = f"at://{body['repo']}/{body['collection']}/{body['rkey']}"
        # Like the reference PDS: swapRecord null means the key must be free.
        if "swapRecord" in body and body["swapRecord"] is None and uri in self.posts:
            return _error(400, "InvalidSwap", f"Record was at {CID}")
        self.created.append({"uri": uri, "record": body["record"]})
        self.posts[uri] = {
            "uri": uri,
            "cid": CID,
            "author": _author(BRAND_DID, "brand.test"),
            "record": body["record"],
            "indexedAt": _iso(datetime.now(UTC)),
        }
        return httpx.Response(200, json={"uri": uri, "cid": CID})


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "message": message}, headers=headers)


@pytest.fixture
def pds() -> FakePds:
    """An empty fake PDS; add notifications with ``pds.add(n, reason, at)``."""
    return FakePds()


@pytest.fixture
def make_adapter(pds: FakePds, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., BlueskyAdapter]]:
    """Builds adapters over ``pds`` with no retry sleeps. Example: ``adapter = make_adapter(store=...)``."""
    monkeypatch.setattr(BlueskyAdapter, "retry_wait", wait_none())
    made: list[BlueskyAdapter] = []

    def make(store: MemorySessionStore | None = None, password: str | None = "app-pass") -> BlueskyAdapter:
        settings = BlueskyAccount(
            handle="brand.test", app_password=SecretStr(password) if password else None, service_url=PDS
        )
        adapter = BlueskyAdapter("main", settings, session_store=store, transport=pds.transport())
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_a_post_the_sdk_cannot_validate_is_still_a_mention_with_all_its_text(pds: FakePds, make_adapter) -> None:
    """A repository may hold a post over the lexicon's 300 graphemes (validation is the writer's choice); the SDK
    leaves such a record untyped. It used to be dropped without an outcome; it is a complaint like any other."""
    long_text = "@brand.test " + "my router has been down for days and nobody calls back. " * 60
    root = pds.add(1, "mention", T0, text=long_text)
    reply = pds.add(2, "reply", T0 + timedelta(seconds=1), text="still down " * 400, reply_to=root)

    batch = make_adapter().fetch(None)

    assert [(m.post_id, m.kind, m.text) for m in batch.mentions] == [
        (root, MentionKind.MENTION, long_text),
        (reply, MentionKind.REPLY, "still down " * 400),
    ]
    first, second = batch.mentions
    assert first.created_at == T0 and first.lang == "de" and first.conversation_id == root
    assert (second.reply_to_id, second.conversation_id) == (root, root)


def test_fetch_returns_mentions_replies_and_quotes_oldest_first_without_reach(pds: FakePds, make_adapter) -> None:
    mention = pds.add(1, "mention", T0, text="@brand.test help")
    pds.notify(mention, "reply", T0)  # the same post both mentions and replies to the brand
    pds.notify("at://x/app.bsky.feed.like/1", "like", T0 + timedelta(seconds=1))
    quote = pds.add(2, "quote", T0 + timedelta(seconds=2))
    reply = pds.add(3, "reply", T0 + timedelta(seconds=3), reply_to=f"at://{BRAND_DID}/app.bsky.feed.post/root")
    adapter = make_adapter()

    batch = adapter.fetch(None)

    assert [(m.post_id, m.kind) for m in batch.mentions] == [
        (mention, MentionKind.MENTION),
        (quote, MentionKind.QUOTE),
        (reply, MentionKind.REPLY),
    ]
    # Only mentions and replies to the brand may be answered; a quote is ticketed without a reply.
    assert [m.addresses_account for m in batch.mentions] == [True, False, True]
    first = batch.mentions[0]
    assert (first.platform, first.account, first.author_id, first.author_handle) == (
        "bluesky",
        "main",
        CUSTOMER_DID,
        "alice.test",
    )
    assert first.created_at == T0 and first.created_at.tzinfo is not None
    assert first.url == "https://bsky.app/profile/alice.test/post/0000000000001"
    assert (first.addresses_account, first.from_account, first.lang) == (True, False, "de")
    assert (first.reply_to_id, first.conversation_id) == (None, mention)
    assert batch.mentions[2].reply_to_id == f"at://{BRAND_DID}/app.bsky.feed.post/root"
    reach = {"Famous Person", "987654", "4242", "99", "https://cdn.example/avatar.jpg"}
    for m in batch.mentions:
        assert not reach & {str(v) for v in dataclasses.asdict(m).values()}


def test_fetch_with_its_cursor_returns_nothing_twice_and_leaves_read_state_alone(pds: FakePds, make_adapter) -> None:
    pds.add(1, "mention", T0)
    adapter = make_adapter()
    first = adapter.fetch(None)
    new = pds.add(2, "mention", T0 + timedelta(seconds=10))

    second = adapter.fetch(first.cursor)
    fresh = make_adapter().fetch(second.cursor)  # a restart with the stored cursor

    assert [m.post_id for m in second.mentions] == [new]
    assert fresh.mentions == []
    assert "app.bsky.notification.updateSeen" not in pds.counts  # the team's unread notifications stay unread


def test_fetch_is_idempotent_per_cursor(pds: FakePds, make_adapter) -> None:
    pds.add(1, "mention", T0)
    adapter = make_adapter()
    cursor = adapter.fetch(None).cursor
    pds.add(2, "mention", T0 + timedelta(seconds=10))

    once, twice = adapter.fetch(cursor), adapter.fetch(cursor)

    assert [m.post_id for m in once.mentions] == [m.post_id for m in twice.mentions]
    assert once.cursor == twice.cursor


def test_fetch_finds_a_backdated_post_that_sorts_below_the_cursor(pds: FakePds, make_adapter) -> None:
    pds.add(1, "mention", T0)
    adapter = make_adapter()
    cursor = adapter.fetch(None).cursor
    # A phone whose clock is 5 minutes slow: the AppView sorts the notification at its createdAt.
    late = pds.add(2, "mention", T0 - timedelta(minutes=5))

    batch = adapter.fetch(cursor)

    assert [m.post_id for m in batch.mentions] == [late]


def test_fetch_pages_back_to_the_window_and_no_further(pds: FakePds, make_adapter) -> None:
    for n in range(150):  # 150 old likes: a second page that is entirely older than the window
        pds.notify(f"at://x/app.bsky.feed.like/{n}", "like", T0 - timedelta(hours=2, seconds=n))
    pds.add(1, "mention", T0)
    adapter = make_adapter()
    cursor = adapter.fetch(None).cursor
    for n in range(120):  # two pages of new notifications
        pds.add(100 + n, "mention", T0 + timedelta(seconds=1 + n))
    before = pds.counts["app.bsky.notification.listNotifications"]

    batch = adapter.fetch(cursor)

    assert len(batch.mentions) == 120 and not batch.gap
    assert [m.post_id for m in batch.mentions] == sorted(m.post_id for m in batch.mentions)  # oldest first
    assert pds.counts["app.bsky.notification.listNotifications"] - before == 2
    assert pds.counts["app.bsky.feed.getPosts"] == 1 + 5  # 25 per call


def test_fetch_skips_a_post_deleted_before_it_was_read(pds: FakePds, make_adapter) -> None:
    gone = pds.add(1, "mention", T0)
    kept = pds.add(2, "mention", T0 + timedelta(seconds=1))
    del pds.posts[gone]

    batch = make_adapter().fetch(None)

    assert [m.post_id for m in batch.mentions] == [kept]


def test_deleted_posts_reports_the_uris_getposts_no_longer_returns(pds: FakePds, make_adapter) -> None:
    uris = [pds.add(n, "mention", T0) for n in range(30)]
    for uri in uris[::7]:
        del pds.posts[uri]

    assert make_adapter().deleted_posts([*uris, "1234567890"]) == set(uris[::7])


def test_a_stored_session_is_reused_without_create_session(pds: FakePds, make_adapter) -> None:
    store = MemorySessionStore(_session_string(time.time() + 7200))

    make_adapter(store=store).fetch(None)

    assert "com.atproto.server.createSession" not in pds.counts


def test_a_new_session_is_stored_and_reused_by_the_next_adapter(pds: FakePds, make_adapter) -> None:
    store = MemorySessionStore()
    make_adapter(store=store).fetch(None)
    make_adapter(store=store).fetch(None)

    assert pds.counts["com.atproto.server.createSession"] == 1
    assert store.get() is not None and BRAND_DID in store.get()


def test_a_session_near_expiry_is_refreshed_not_recreated(pds: FakePds, make_adapter) -> None:
    store = MemorySessionStore(_session_string(time.time() + 60))
    old = store.get()

    make_adapter(store=store).fetch(None)

    assert pds.counts["com.atproto.server.refreshSession"] == 1
    assert "com.atproto.server.createSession" not in pds.counts
    assert store.get() != old


def test_a_refused_session_whose_refresh_fails_logs_in_again(pds: FakePds, make_adapter) -> None:
    store = MemorySessionStore(_session_string(time.time() + 7200))
    pds.refresh_ok = False
    calls = []

    def expired_once(request: httpx.Request) -> httpx.Response | None:
        calls.append(request)
        return _error(400, "ExpiredToken", "Token has been revoked") if len(calls) == 1 else None

    pds.overrides["app.bsky.notification.listNotifications"] = expired_once

    make_adapter(store=store).fetch(None)

    assert pds.counts["com.atproto.server.refreshSession"] == 1
    assert pds.counts["com.atproto.server.createSession"] == 1
    assert len(calls) == 2


def test_a_wrong_app_password_raises_auth_failed(pds: FakePds, make_adapter) -> None:
    with pytest.raises(AuthFailed, match="brand.test"):
        make_adapter(password="wrong").fetch(None)


def test_no_password_and_no_session_raises_auth_failed(pds: FakePds, make_adapter) -> None:
    with pytest.raises(AuthFailed, match="app_password"):
        make_adapter(password=None).fetch(None)
    assert pds.counts == {}


def test_429_raises_rate_limited_and_pauses_that_method(pds: FakePds, make_adapter) -> None:
    reset = int(time.time()) + 120
    pds.overrides["app.bsky.notification.listNotifications"] = lambda r: _error(
        429, "RateLimitExceeded", "slow down", {"ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
    )
    adapter = make_adapter()

    with pytest.raises(RateLimited) as first:
        adapter.fetch(None)
    with pytest.raises(RateLimited) as second:
        adapter.fetch(None)

    assert 100 < first.value.retry_after <= 121
    assert 0 < second.value.retry_after <= 121
    assert pds.counts["app.bsky.notification.listNotifications"] == 1  # the second never reached the PDS


def test_a_used_up_budget_pauses_before_a_429(pds: FakePds, make_adapter) -> None:
    def last_one(request: httpx.Request) -> httpx.Response:
        response = pds._app_bsky_notification_listNotifications(request)
        response.headers.update({"ratelimit-remaining": "0", "ratelimit-reset": str(int(time.time()) + 60)})
        return response

    pds.overrides["app.bsky.notification.listNotifications"] = last_one
    adapter = make_adapter()
    adapter.fetch(None)

    with pytest.raises(RateLimited):
        adapter.fetch(None)
    assert pds.counts["app.bsky.notification.listNotifications"] == 1


def test_5xx_is_retried_then_raised_as_transient(pds: FakePds, make_adapter) -> None:
    pds.overrides["app.bsky.notification.listNotifications"] = lambda r: _error(503, "Unavailable", "down")

    with pytest.raises(TransientError):
        make_adapter().fetch(None)
    assert pds.counts["app.bsky.notification.listNotifications"] == 3


def test_a_5xx_that_recovers_within_the_retries_is_not_an_error(pds: FakePds, make_adapter) -> None:
    calls: list[httpx.Request] = []

    def fail_once(request: httpx.Request) -> httpx.Response | None:
        calls.append(request)
        return _error(502, "BadGateway", "x") if len(calls) == 1 else None

    pds.overrides["app.bsky.notification.listNotifications"] = fail_once
    pds.add(1, "mention", T0)

    assert len(make_adapter().fetch(None).mentions) == 1
    assert len(calls) == 2


def test_network_errors_become_transient(pds: FakePds, make_adapter) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    pds.overrides["app.bsky.notification.listNotifications"] = refuse

    with pytest.raises(TransientError):
        make_adapter().fetch(None)


def _mention(uri: str, **changes: Any) -> Mention:
    base = Mention(
        platform="bluesky",
        account="main",
        post_id=uri,
        author_id=CUSTOMER_DID,
        author_handle="alice.test",
        text="hi",
        created_at=T0,
        url="https://bsky.app/profile/alice.test/post/1",
    )
    return dataclasses.replace(base, **changes)


def test_send_reply_posts_a_threaded_reply_with_a_link_facet_once(pds: FakePds, make_adapter) -> None:
    root = f"at://{BRAND_DID}/app.bsky.feed.post/root"
    uri = pds.add(1, "reply", T0, reply_to=root)
    adapter = make_adapter()
    text = "Désolé 😞 ticket: https://help.example/t/abc."

    sent = adapter.send_reply(Reply("main", _mention(uri, kind=MentionKind.REPLY), text))
    again = make_adapter().send_reply(Reply("main", _mention(uri, kind=MentionKind.REPLY), text))

    assert sent == again == f"at://{BRAND_DID}/app.bsky.feed.post/{reply_rkey(uri)}" and len(pds.created) == 1
    record = pds.created[0]["record"]
    assert record["langs"] == ["en"]
    assert record["reply"]["root"]["uri"] == root and record["reply"]["parent"]["uri"] == uri
    (facet,) = record["facets"]
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert text.encode()[start:end] == b"https://help.example/t/abc"


@pytest.mark.parametrize(
    "changes",
    [{"addresses_account": False}, {"from_account": True}, {"kind": MentionKind.REPOST}, {"account": "other"}],
)
def test_send_reply_refuses_posts_that_did_not_address_the_brand(pds: FakePds, make_adapter, changes) -> None:
    with pytest.raises(PermanentError):
        make_adapter().send_reply(Reply("main", _mention("at://x/app.bsky.feed.post/1", **changes), "hi"))
    assert pds.counts == {}


def test_send_reply_refuses_text_over_300_graphemes(pds: FakePds, make_adapter) -> None:
    with pytest.raises(PermanentError, match="graphemes"):
        make_adapter().send_reply(Reply("main", _mention("at://x/app.bsky.feed.post/1"), "a" * 301))


def test_send_reply_to_a_deleted_post_is_permanent(pds: FakePds, make_adapter) -> None:
    uri = pds.add(1, "mention", T0)
    del pds.posts[uri]

    with pytest.raises(PermanentError, match="deleted"):
        make_adapter().send_reply(Reply("main", _mention(uri), "hi"))


def test_a_create_that_times_out_is_not_retried_in_call(pds: FakePds, make_adapter) -> None:
    uri = pds.add(1, "mention", T0)

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    pds.overrides["com.atproto.repo.putRecord"] = timeout

    with pytest.raises(TransientError):
        make_adapter().send_reply(Reply("main", _mention(uri), "hi"))
    assert pds.counts["com.atproto.repo.putRecord"] == 1


def test_find_reply_is_none_without_a_reply_and_for_a_missing_post(pds: FakePds, make_adapter) -> None:
    uri = pds.add(1, "mention", T0)
    adapter = make_adapter()

    assert adapter.find_reply(_mention(uri)) is None
    assert adapter.find_reply(_mention(f"at://{CUSTOMER_DID}/app.bsky.feed.post/gone")) is None


def test_fetch_asks_only_for_mentions_replies_and_quotes(pds: FakePds, make_adapter) -> None:
    pds.add(1, "mention", T0)
    for n in range(7):
        pds.notify(f"at://x/app.bsky.feed.like/{n}", "like", T0 + timedelta(seconds=1 + n))

    make_adapter().fetch(None)

    assert pds.reasons_asked == [["mention", "quote", "reply"]]


def test_send_reply_to_a_thread_that_allows_no_replies_is_permanent_and_posts_nothing(
    pds: FakePds, make_adapter
) -> None:
    uri = pds.add(1, "mention", T0)
    pds.posts[uri]["viewer"] = {"replyDisabled": True}

    with pytest.raises(PermanentError, match="the thread's author allows no replies"):
        make_adapter().send_reply(Reply("main", _mention(uri), "hi"))
    assert "com.atproto.repo.putRecord" not in pds.counts


def test_a_second_send_whose_key_is_taken_returns_the_first_reply(pds: FakePds, make_adapter) -> None:
    uri = pds.add(1, "mention", T0)
    first = make_adapter().send_reply(Reply("main", _mention(uri), "hi"))

    again = make_adapter().send_reply(Reply("main", _mention(uri), "hi"))  # a restart that never learnt of it

    assert again == first and len(pds.created) == 1
    assert pds.counts["com.atproto.repo.putRecord"] == 2  # the second put was refused (InvalidSwap) ...
    assert pds.counts["com.atproto.repo.getRecord"] == 1  # ... and the repo, not the lagging thread view, named it
    assert "app.bsky.feed.getPostThread" not in pds.counts


def test_reply_langs_are_bcp47_tags_one_to_three() -> None:
    assert BlueskyAccount(handle="b.test").reply_langs == ["en"]
    assert BlueskyAccount(handle="b.test", reply_langs=["pt-BR", "es-419"]).reply_langs == ["pt-BR", "es-419"]
    for bad in ([], ["english"], ["en_US"], ["en-"], ["ü"], ["en", "de", "fr", "it"]):
        with pytest.raises(ValueError, match="reply_langs"):
            BlueskyAccount(handle="b.test", reply_langs=bad)


_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")  # the atproto TID syntax


def test_reply_rkey_is_a_valid_tid_derived_from_the_post_alone() -> None:
    uris = [f"at://{CUSTOMER_DID}/app.bsky.feed.post/{n:013d}" for n in range(2000)]

    keys = [reply_rkey(uri) for uri in uris]

    assert all(_TID.match(key) for key in keys)
    assert keys == [reply_rkey(uri) for uri in uris]  # every daemon, every restart: the same key
    assert len(set(keys)) == len(keys)
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    micros = [sum(alphabet.index(c) << (5 * i) for i, c in enumerate(reversed(key))) >> 10 for key in keys]
    assert max(micros) < datetime(2006, 1, 1, tzinfo=UTC).timestamp() * 1e6  # never ahead of the PDS's own keys
