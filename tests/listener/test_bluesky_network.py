"""The Bluesky adapter against a real local AT Protocol network (PLC, PDS, AppView from @atproto/dev-env)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from fairdesk.config.settings import BlueskyAccount
from fairdesk.listener.base import MENTION_FIELDS, Batch, MentionKind, PermanentError, Reply
from fairdesk.listener.bluesky import BlueskyAdapter
from fairdesk.listener.bluesky_session import FileSessionStore, MemorySessionStore, SessionStore
from tests.peers.bluesky import Account, BlueskyAccounts, BlueskyPeer, CountingTransport

pytestmark = pytest.mark.bluesky

LINK = "http://127.0.0.1:8000/t/Zm9vYmFyYmF6cXV4cXV1eA"
REPLY_TEXT = f"Sorry about that 📦! We opened ticket FD-000042 for you: {LINK}"

MakeAdapter = Callable[..., BlueskyAdapter]


@dataclasses.dataclass(frozen=True)
class Brand:
    account: Account
    app_password: str


@pytest.fixture
def brand(bluesky_peer: BlueskyPeer) -> Brand:
    """A brand account of its own for one test (its notifications start empty), with an app password."""
    account = bluesky_peer.create_account("brand")
    return Brand(account, bluesky_peer.app_password(account))


@pytest.fixture
def customer(bluesky_accounts: BlueskyAccounts) -> Account:
    return bluesky_accounts.customer


@pytest.fixture
def make_adapter(bluesky_peer: BlueskyPeer) -> Iterator[MakeAdapter]:
    """Builds real adapters for a brand. Example: ``adapter = make_adapter(brand, store=FileSessionStore(path))``."""
    made: list[BlueskyAdapter] = []

    def make(
        brand: Brand,
        *,
        store: SessionStore | None = None,
        transport: CountingTransport | None = None,
        reply_langs: list[str] | None = None,
        **pages: int,
    ) -> BlueskyAdapter:
        settings = BlueskyAccount(
            handle=brand.account.handle,
            app_password=SecretStr(brand.app_password),
            service_url=bluesky_peer.pds_url,
            reply_langs=reply_langs or ["en"],
        )
        adapter = BlueskyAdapter("main", settings, session_store=store, transport=transport, **pages)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def fetch_until(peer: BlueskyPeer, adapter: BlueskyAdapter, since: str | None, *uris: str) -> Batch:
    """Fetch with the same cursor until the batch holds every one of ``uris`` (indexing is asynchronous)."""

    def attempt() -> Batch | None:
        batch = adapter.fetch(since)
        return batch if set(uris) <= {m.post_id for m in batch.mentions} else None

    return peer.wait_for(attempt, f"{len(uris)} post(s) in fetch()")


def brand_replies(peer: BlueskyPeer, viewer: Account, brand: Account, uri: str) -> list[dict]:
    thread = peer.thread(viewer, uri)
    return [r["post"] for r in thread.get("replies", []) if r["post"]["author"]["did"] == brand.did]


def test_session_fixture_accounts_round_trip(
    bluesky_peer: BlueskyPeer, bluesky_accounts: BlueskyAccounts, make_adapter: MakeAdapter
) -> None:
    brand = Brand(bluesky_accounts.brand, bluesky_accounts.brand_app_password)
    adapter = make_adapter(brand)
    cursor = adapter.fetch(None).cursor
    post = bluesky_peer.post(bluesky_accounts.customer, "Hello ", mention=brand.account, after=" where is my order?")

    batch = fetch_until(bluesky_peer, adapter, cursor, post.uri)
    adapter.send_reply(Reply("main", batch.mentions[-1], REPLY_TEXT))

    assert bluesky_peer.wait_for(
        lambda: brand_replies(bluesky_peer, bluesky_accounts.customer, brand.account, post.uri), "reply in thread"
    )


def test_a_mention_comes_back_as_a_mention_without_reach_and_a_plain_post_does_not(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(brand)
    plain = bluesky_peer.post(customer, f"{brand.account.handle} is a shop I use (no mention facet, no tag)")
    post = bluesky_peer.post(customer, "Hey ", mention=brand.account, after=" my parcel never arrived 📦", langs=["en"])

    batch = fetch_until(bluesky_peer, adapter, None, post.uri)

    assert [m.post_id for m in batch.mentions] == [post.uri]
    assert plain.uri not in {m.post_id for m in batch.mentions}
    m = batch.mentions[0]
    assert tuple(f.name for f in dataclasses.fields(m)) == MENTION_FIELDS
    assert (m.platform, m.account, m.author_id, m.author_handle) == ("bluesky", "main", customer.did, customer.handle)
    assert m.text == f"Hey @{brand.account.handle} my parcel never arrived 📦"
    assert m.created_at.tzinfo is not None
    assert m.url == f"https://bsky.app/profile/{customer.handle}/post/{post.uri.rsplit('/', 1)[-1]}"
    assert (m.kind, m.addresses_account, m.from_account) == (MentionKind.MENTION, True, False)
    assert (m.reply_to_id, m.conversation_id, m.lang) == (None, post.uri, "en")


def test_the_reply_reaches_the_customer_threaded_with_a_link_facet(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(brand)
    post = bluesky_peer.post(customer, "Ünïcödé 😞 ", mention=brand.account, after=" refund please")
    mention = fetch_until(bluesky_peer, adapter, None, post.uri).mentions[0]

    reply_uri = adapter.send_reply(Reply("main", mention, REPLY_TEXT))

    (seen,) = bluesky_peer.wait_for(lambda: brand_replies(bluesky_peer, customer, brand.account, post.uri), "reply")
    assert seen["uri"] == reply_uri and seen["record"]["text"] == REPLY_TEXT
    assert seen["record"]["reply"]["root"]["uri"] == post.uri and seen["record"]["reply"]["parent"]["uri"] == post.uri
    (facet,) = seen["record"]["facets"]
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert REPLY_TEXT.encode()[start:end].decode() == LINK
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": LINK}]
    notes = bluesky_peer.wait_for(
        lambda: [n for n in bluesky_peer.notifications(customer) if n["uri"] == reply_uri], "reply notification"
    )
    assert notes[0]["reason"] == "reply" and notes[0]["author"]["did"] == brand.account.did


def test_find_reply_finds_the_sent_reply_and_a_second_send_posts_nothing(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(brand)
    post = bluesky_peer.post(customer, "", mention=brand.account, after=" app keeps crashing")
    mention = fetch_until(bluesky_peer, adapter, None, post.uri).mentions[0]
    restarted = make_adapter(brand)  # no memory of what the first one sent
    assert restarted.find_reply(mention) is None

    reply_uri = adapter.send_reply(Reply("main", mention, REPLY_TEXT))

    assert bluesky_peer.wait_for(lambda: restarted.find_reply(mention), "find_reply") == reply_uri
    assert restarted.send_reply(Reply("main", mention, REPLY_TEXT)) == reply_uri
    assert len(bluesky_peer.replies_in_repo(brand.account, post.uri)) == 1


def test_a_follow_up_in_the_thread_points_to_the_thread(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(brand)
    post = bluesky_peer.post(customer, "", mention=brand.account, after=" my order never arrived")
    first = fetch_until(bluesky_peer, adapter, None, post.uri)
    reply_uri = adapter.send_reply(Reply("main", first.mentions[0], REPLY_TEXT))
    bluesky_peer.wait_for(lambda: brand_replies(bluesky_peer, customer, brand.account, post.uri), "reply")

    follow_up = bluesky_peer.post(customer, "still nothing, the link says pending", reply_to=reply_uri)
    batch = fetch_until(bluesky_peer, adapter, first.cursor, follow_up.uri)

    assert [m.post_id for m in batch.mentions] == [follow_up.uri]
    m = batch.mentions[0]
    assert (m.kind, m.reply_to_id, m.conversation_id) == (MentionKind.REPLY, reply_uri, post.uri)
    assert m.addresses_account and not m.from_account


def test_a_quote_of_the_brand_comes_back_as_a_quote(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(brand)
    announcement = bluesky_peer.post(brand.account, "We ship worldwide now!")
    quote = bluesky_peer.post(customer, "not to my country you don't", quote=announcement)

    batch = fetch_until(bluesky_peer, adapter, None, quote.uri)

    assert [(m.post_id, m.kind) for m in batch.mentions] == [(quote.uri, MentionKind.QUOTE)]
    assert not batch.mentions[0].addresses_account  # read and ticketed, never replied to


def test_a_fresh_adapter_with_the_stored_cursor_and_session_returns_nothing_handled(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter, tmp_path: Path
) -> None:
    store = FileSessionStore(tmp_path / "bluesky-main.session")
    first_transport = CountingTransport()
    adapter = make_adapter(brand, store=store, transport=first_transport)
    posts = [bluesky_peer.post(customer, f"#{n} ", mention=brand.account, after=" broken") for n in range(3)]
    batch = fetch_until(bluesky_peer, adapter, None, *(p.uri for p in posts))
    assert [m.post_id for m in batch.mentions] == [p.uri for p in posts]  # oldest first

    transport = CountingTransport()
    again = make_adapter(brand, store=store, transport=transport).fetch(batch.cursor)

    assert again.mentions == []
    assert first_transport.counts["com.atproto.server.createSession"] == 1
    assert "com.atproto.server.createSession" not in transport.counts  # the stored session was reused
    assert "app.bsky.notification.updateSeen" not in transport.counts  # the read state is the team's


def test_polls_leave_the_brand_teams_unread_notifications_unread(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(brand)
    first = bluesky_peer.post(customer, "", mention=brand.account, after=" still waiting")
    batch = fetch_until(bluesky_peer, adapter, None, first.uri)
    second = bluesky_peer.post(customer, "", mention=brand.account, after=" hello? anyone?")
    bluesky_peer.wait_for(lambda: bluesky_peer.unread_count(brand.account) == 2, "two unread notifications")

    batch = fetch_until(bluesky_peer, adapter, batch.cursor, second.uri)
    again = make_adapter(brand).fetch(batch.cursor)  # a restart with the stored cursor

    assert again.mentions == []
    assert bluesky_peer.unread_count(brand.account) == 2


def test_a_burst_of_likes_follows_and_reposts_pages_nothing_and_is_no_gap(
    bluesky_peer: BlueskyPeer,
    brand: Brand,
    customer: Account,
    bluesky_accounts: BlueskyAccounts,
    make_adapter: MakeAdapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = CountingTransport()
    # Small pages, so a burst of a dozen notifications stands for a busy brand's thousands.
    adapter = make_adapter(brand, transport=transport, page_size=5, max_pages=2)
    announcements = [bluesky_peer.post(brand.account, f"News #{n}") for n in range(3)]
    earlier = bluesky_peer.post(customer, "", mention=brand.account, after=" where is my order?")
    cursor = fetch_until(bluesky_peer, adapter, None, earlier.uri).cursor
    fan = bluesky_accounts.brand  # a second account, so the burst has two authors
    for post in announcements:
        bluesky_peer.like(customer, post)
        bluesky_peer.repost(customer, post)
        bluesky_peer.like(fan, post)
    bluesky_peer.follow(customer, brand.account)
    bluesky_peer.follow(fan, brand.account)
    mention = bluesky_peer.post(customer, "", mention=brand.account, after=" it never came")
    bluesky_peer.wait_for(lambda: len(bluesky_peer.notifications(brand.account)) == 13, "the burst indexed")
    transport.counts.clear()

    batch = adapter.fetch(cursor)

    assert [m.post_id for m in batch.mentions] == [mention.uri]
    assert not batch.gap and "older ones skipped" not in caplog.text
    assert transport.counts["app.bsky.notification.listNotifications"] == 1


def test_deleted_posts_detects_a_post_its_author_deleted(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(brand)
    kept = bluesky_peer.post(customer, "", mention=brand.account, after=" broken again")
    gone = bluesky_peer.post(customer, "", mention=brand.account, after=" my card number is 4111...")
    fetch_until(bluesky_peer, adapter, None, kept.uri, gone.uri)

    bluesky_peer.delete(customer, gone.uri)

    assert bluesky_peer.wait_for(lambda: adapter.deleted_posts([kept.uri, gone.uri]), "deletion indexed") == {gone.uri}


def test_a_new_session_is_created_once_and_persisted_mode_0600(
    brand: Brand, make_adapter: MakeAdapter, tmp_path: Path
) -> None:
    store = FileSessionStore(tmp_path / "bluesky-main.session")
    transport = CountingTransport()

    for _ in range(3):
        make_adapter(brand, store=store, transport=transport).fetch(None)

    assert transport.counts["com.atproto.server.createSession"] == 1
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert brand.account.did in (store.get() or "")


def test_a_revoked_session_logs_in_again_with_the_app_password(
    bluesky_peer: BlueskyPeer, brand: Brand, make_adapter: MakeAdapter
) -> None:
    store = MemorySessionStore()
    make_adapter(brand, store=store).fetch(None)
    old = store.get() or ""
    handle, did, _access, refresh, pds = old.split(":::")
    bluesky_peer.http.post(
        "com.atproto.server.deleteSession", headers={"Authorization": f"Bearer {refresh}"}
    ).raise_for_status()
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 4102444800}).encode()).decode().rstrip("=")
    store.set(":::".join([handle, did, f"e30.{payload}.c2ln", refresh, pds]))  # an access token the PDS refuses
    transport = CountingTransport()

    make_adapter(brand, store=store, transport=transport).fetch(None)

    assert transport.counts["com.atproto.server.createSession"] == 1
    assert store.get() not in (old, None)


def test_a_reply_is_found_at_once_and_a_resend_after_a_crash_posts_nothing(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    posts = [bluesky_peer.post(customer, f"#{n} ", mention=brand.account, after=" refund?") for n in range(3)]
    mentions = fetch_until(bluesky_peer, make_adapter(brand), None, *(p.uri for p in posts)).mentions

    for mention in mentions:
        sent = make_adapter(brand).send_reply(Reply("main", mention, REPLY_TEXT))
        # The crash: the daemon that sent it is gone. Another asks at once, before the AppView has indexed the reply,
        # and a resend after that answer must not make a second reply.
        assert make_adapter(brand).find_reply(mention) == sent
        assert make_adapter(brand).send_reply(Reply("main", mention, REPLY_TEXT)) == sent

    for post in posts:
        assert len(bluesky_peer.replies_in_repo(brand.account, post.uri)) == 1
        (seen,) = bluesky_peer.wait_for(
            lambda uri=post.uri: brand_replies(bluesky_peer, customer, brand.account, uri), "reply"
        )
        notes = bluesky_peer.wait_for(
            lambda uri=seen["uri"]: [n for n in bluesky_peer.notifications(customer) if n["uri"] == uri], "notification"
        )
        assert notes[0]["reason"] == "reply"


def test_a_thread_whose_author_allows_no_replies_gets_none(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(brand)
    post = bluesky_peer.post(customer, "", mention=brand.account, after=" your app ate my data")
    mention = fetch_until(bluesky_peer, adapter, None, post.uri).mentions[0]
    bluesky_peer.forbid_replies(customer, post)
    bluesky_peer.wait_for(lambda: bluesky_peer.replies_disabled(brand.account, post.uri), "the threadgate")

    with pytest.raises(PermanentError, match="allows no replies"):
        adapter.send_reply(Reply("main", mention, REPLY_TEXT))

    assert bluesky_peer.replies_in_repo(brand.account, post.uri) == []


def test_the_reply_carries_the_configured_languages(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(brand, reply_langs=["pt-BR", "en"])
    post = bluesky_peer.post(customer, "", mention=brand.account, after=" meu pedido não chegou", langs=["pt"])
    mention = fetch_until(bluesky_peer, adapter, None, post.uri).mentions[0]

    adapter.send_reply(Reply("main", mention, REPLY_TEXT))

    (record,) = bluesky_peer.replies_in_repo(brand.account, post.uri)
    assert record["value"]["langs"] == ["pt-BR", "en"]
    (seen,) = bluesky_peer.wait_for(lambda: brand_replies(bluesky_peer, customer, brand.account, post.uri), "reply")
    assert seen["record"]["langs"] == ["pt-BR", "en"]  # the AppView serves it as written


def test_find_reply_also_finds_a_reply_posted_without_the_derived_key(
    bluesky_peer: BlueskyPeer, brand: Brand, customer: Account, make_adapter: MakeAdapter
) -> None:
    post = bluesky_peer.post(customer, "", mention=brand.account, after=" my invoice is wrong")
    mention = fetch_until(bluesky_peer, make_adapter(brand), None, post.uri).mentions[0]
    # A reply from before keys were derived, or one a person wrote in the app: the thread view still shows it.
    by_hand = bluesky_peer.post(brand.account, "We are on it", reply_to=post.uri)

    assert bluesky_peer.wait_for(lambda: make_adapter(brand).find_reply(mention), "find_reply") == by_hand.uri
