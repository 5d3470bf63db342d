"""XAdapter replies: one signed POST per reply, refusals X requires, crash-safe lookups, and X's length rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from fairdesk.config.settings import DEFAULT_TEMPLATE
from fairdesk.listener.base import FoundBy, Mention, MentionKind, PermanentError, RateLimited, Reply, TransientError
from fairdesk.listener.x import XAdapter, check_template, weighted_length
from fairdesk.ticketing.tokens import MAX_TOKEN_LENGTH as LONGEST_TOKEN
from tests.fakes.x_server import FakeXServer, Fault

TEXT = "Thanks for telling us. Ticket FD-000042: https://help.acme.example.com/t/AbCdEf0123456789"

MakeAdapter = Callable[..., XAdapter]  # the x_adapter_with fixture


def _fetch_one(x_server: FakeXServer, adapter: XAdapter, text: str = "@acme_support my router is broken") -> Mention:
    post = x_server.post("dana_k", text)
    return next(m for m in adapter.fetch(None).mentions if m.post_id == post)


def _reply(mention: Mention, text: str = TEXT) -> Reply:
    return Reply(account=mention.account, in_reply_to=mention, text=text)


def test_send_reply_posts_one_signed_reply_in_the_thread(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    mention = _fetch_one(x_server, x_adapter)

    new_id = x_adapter.send_reply(_reply(mention))

    (post,) = x_server.requests("create")
    assert post.auth == "oauth1" and post.status == 201 and post.host == "api.twitter.com"
    assert post.body == {"text": TEXT, "reply": {"in_reply_to_tweet_id": mention.post_id}}
    created = x_server.tweet(new_id)
    assert created.author_id == x_server.brand.id and created.ref("replied_to") == mention.post_id
    assert created.conversation_id == mention.conversation_id


@pytest.mark.parametrize(
    "change",
    [
        {"found_by": FoundBy.SEARCH},
        {"found_by": FoundBy.SEARCH, "addresses_account": True},
        {"addresses_account": False},
        {"kind": MentionKind.REPOST},
        {"account": "other"},
    ],
    ids=["keyword-hit", "keyword-hit-mentioning", "not-addressed", "repost", "other-account"],
)
def test_send_reply_refuses_what_x_forbids_without_calling_x(
    x_server: FakeXServer, x_adapter: XAdapter, change: dict
) -> None:
    mention = dataclasses.replace(_fetch_one(x_server, x_adapter), **change)
    with pytest.raises(PermanentError):
        x_adapter.send_reply(Reply(account="brand", in_reply_to=mention, text=TEXT))
    assert x_server.requests("create") == []


def test_keyword_hits_from_fetch_are_refused(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    adapter = x_adapter_with(search_query="acme")
    x_server.post("lee_t", "acme lost my parcel")
    (hit,) = adapter.fetch(None).mentions
    assert hit.found_by is FoundBy.SEARCH
    with pytest.raises(PermanentError, match="keyword"):
        adapter.send_reply(_reply(hit))
    assert x_server.requests("create") == []


def test_403_is_permanent_with_xs_reason(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    mention = _fetch_one(x_server, x_adapter)
    x_server.delete(mention.post_id)
    with pytest.raises(PermanentError, match="deleted or not visible"):
        x_adapter.send_reply(_reply(mention))


def test_x_refuses_replies_to_posts_that_did_not_summon_the_account(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    # A post that does not mention the brand, wrongly marked as addressing it: X itself says no.
    mention = _fetch_one(x_server, x_adapter)
    other = x_server.post("lee_t", "my router is broken too")
    with pytest.raises(PermanentError, match="not been mentioned"):
        x_adapter.send_reply(_reply(dataclasses.replace(mention, post_id=other)))


def test_a_reply_over_280_weighted_characters_is_refused_before_sending(
    x_server: FakeXServer, x_adapter: XAdapter
) -> None:
    mention = _fetch_one(x_server, x_adapter)
    with pytest.raises(PermanentError, match="weighted"):
        x_adapter.send_reply(_reply(mention, "支" * 141))
    assert x_server.requests("create") == []


def test_a_timed_out_post_that_x_created_is_found_not_sent_twice(
    x_server: FakeXServer, x_adapter_with: MakeAdapter
) -> None:
    adapter = x_adapter_with(timeout=0.3)
    mention = _fetch_one(x_server, adapter)
    x_server.inject("create", Fault.slow(1.0, process=True))  # created at once, answered after the client gave up

    new_id = adapter.send_reply(_reply(mention))

    assert len(x_server.requests("create")) == 1  # creating a post is never retried blindly
    replies = [t for t in x_server.posts_by("acme_support") if t.ref("replied_to") == mention.post_id]
    assert [t.id for t in replies] == [new_id]


def test_a_server_error_on_create_is_transient_and_not_retried(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    mention = _fetch_one(x_server, x_adapter)
    x_server.inject("create", Fault.error(503))
    with pytest.raises(TransientError, match="503"):
        x_adapter.send_reply(_reply(mention))
    assert len(x_server.requests("create")) == 1
    assert len(x_server.requests("timeline")) == 1  # it looked for the reply before giving up


def test_a_repeated_reply_returns_the_first_one(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    mention = _fetch_one(x_server, x_adapter)
    first = x_adapter.send_reply(_reply(mention))
    # X refuses duplicate content (403); the adapter recognises its own earlier reply.
    assert x_adapter.send_reply(_reply(mention)) == first
    assert [r.status for r in x_server.requests("create")] == [201, 403]
    assert len(x_server.posts_by("acme_support")) == 1


def test_find_reply_reads_the_brand_timeline_across_pages(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    mention = _fetch_one(x_server, x_adapter)
    other = _fetch_one(x_server, x_adapter, "@acme_support the app is down")
    assert x_adapter.find_reply(mention) is None

    reply_id = x_adapter.send_reply(_reply(mention))
    for i in range(150):  # newer brand posts push the reply to the timeline's second page
        x_server.post("acme_support", f"Service update {i}")
    x_server.clear_log()

    assert x_adapter.find_reply(mention) == reply_id
    assert x_adapter.find_reply(other) is None
    first = x_server.requests("timeline")[0]
    assert first.query["since_id"] == mention.post_id and first.fields("tweet.fields") == {"referenced_tweets"}
    assert len(x_server.requests("timeline")) == 2 + 2


def test_rate_limited_create_is_not_called_again_before_the_reset(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    mention = _fetch_one(x_server, x_adapter)
    x_server.inject("create", Fault.rate_limited(reset_in=30))
    with pytest.raises(RateLimited):
        x_adapter.send_reply(_reply(mention))
    with pytest.raises(RateLimited):
        x_adapter.send_reply(_reply(mention))
    assert len(x_server.requests("create")) == 1


def test_listen_only_account_cannot_reply(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    keys = {k: None for k in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")}
    adapter = x_adapter_with(**keys)
    mention = _fetch_one(x_server, adapter)
    with pytest.raises(PermanentError, match="OAuth"):
        adapter.send_reply(_reply(mention))


# --- X's weighted length and the template check -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 280, 280),
        ("あ" * 140, 280),  # CJK counts 2
        ("한국어", 6),
        ("“quoted” – fine…", 17),  # U+2010-201F count 1, the ellipsis U+2026 counts 2
        ("e\u0301", 1),  # NFC first
        ("😀", 2),
        ("👍🏽", 2),  # skin tone modifier
        ("👨‍👩‍👧‍👦", 2),  # ZWJ family
        ("🇫🇷", 2),  # flag
        ("1️⃣", 2),  # keycap
        ("❤️", 2),
        ("https://example.com/" + "a" * 100, 23),  # every URL is 23
        ("see http://x.co now", 4 + 23 + 4),
        ("see example.com", 4 + 23),
        ("see acme.de/help.", 4 + 23 + 1),  # a bare ccTLD domain needs a path; trailing dot is not the link's
        ("file.txt and foo.bar", 20),  # not links
        ("http://127.0.0.1:8000/t/abc", 27),  # X does not shorten an IP address
        ("a@acme.com", 10),  # part of an e-mail address, not a link
    ],
)
def test_weighted_length_follows_twitter_text(text: str, expected: int) -> None:
    assert weighted_length(text) == expected


def test_the_default_template_fits() -> None:
    check_template(DEFAULT_TEMPLATE, "https://help.acme.example.com")
    check_template(DEFAULT_TEMPLATE, "http://127.0.0.1:8000")  # counted character by character, still fits


def test_a_template_that_cannot_fit_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="weighted"):
        check_template("x" * 250 + " {ref} {link}", "https://help.acme.example.com")
    with pytest.raises(ValueError, match="weighted"):
        check_template("お問い合わせありがとうございます" * 8 + " {ref} {link}", "https://help.acme.example.com")


def test_the_template_check_uses_the_longest_ref_and_a_literal_link() -> None:
    base = "x" * (280 - 23 - 1 - 13 - 1) + " {link} {ref}"  # exactly 280 with a 13-character ref
    check_template(base, "https://help.acme.example.com")
    with pytest.raises(ValueError):
        check_template(base + "!", "https://help.acme.example.com")
    local = "http://10.0.0.1"
    raw_link = len(local) + len("/t/") + LONGEST_TOKEN
    template = "x" * (280 - raw_link) + " {link}"  # 281 if the link counts as written, 222 if it counts 23
    with pytest.raises(ValueError):
        check_template(template, local)
    check_template(template, "https://help.acme.example.com")
