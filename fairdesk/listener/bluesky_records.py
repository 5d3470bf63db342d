"""Bluesky post records as plain values: what fairdesk reads from one, and what it writes (text limits, link spans,
the reply's record key)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import regex

from fairdesk.listener.reply_text import longest_reply

MAX_GRAPHEMES = 300  # app.bsky.feed.post#text maxGraphemes
MAX_TEXT_BYTES = 3000  # app.bsky.feed.post#text maxLength (UTF-8 bytes)
_URL = re.compile(r"https?://[^\s<>\"'`]+")
_URL_TRAILING = ".,;:!?)]}"
_GRAPHEME = regex.compile(r"\X")
# The TID syntax (atproto spec "Record Key" / "TID"): 13 base32-sortable characters of a 64-bit big-endian integer
# whose top bit is 0, then 53 bits of microseconds since the epoch and a 10-bit clock id.
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_LENGTH = 13
TID_CLOCK_BITS = 10
TID_TIME_SPAN = 1 << 50  # microseconds: up to September 2005


def grapheme_len(text: str) -> int:
    """Length in extended grapheme clusters (UAX #29), the unit of Bluesky's 300-per-post limit."""
    return len(_GRAPHEME.findall(text))


def link_spans(text: str) -> list[tuple[int, int, str]]:
    """Every http(s) URL in ``text`` as (UTF-8 byte start, byte end, url); trailing punctuation is not part of it."""
    spans = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_URL_TRAILING)
        start = len(text[: match.start()].encode("utf-8"))
        spans.append((start, start + len(url.encode("utf-8")), url))
    return spans


def check_text(text: str) -> None:
    """Raise ValueError if ``text`` cannot be one Bluesky post."""
    graphemes = grapheme_len(text)
    if graphemes > MAX_GRAPHEMES:
        raise ValueError(f"is {graphemes} graphemes long; a Bluesky post holds at most {MAX_GRAPHEMES}")
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise ValueError(f"is {size} bytes long; a Bluesky post holds at most {MAX_TEXT_BYTES}")


def check_template(template: str, public_url: str) -> None:
    """Raise ValueError if the longest reply ``template`` can produce does not fit in one Bluesky post.
    Call it at start for every configured Bluesky account."""
    try:
        check_text(longest_reply(template, public_url))
    except ValueError as exc:
        raise ValueError(
            f"the longest reply it makes (ticket ref and link filled in) {exc}; shorten the template or public_url"
        ) from exc


def reply_rkey(post_uri: str) -> str:
    """The record key of the brand's reply to ``post_uri``: a valid TID derived from the URI alone.

    app.bsky.feed.post records are keyed by TID, so the key is one: 53 bits of "microseconds" and a 10-bit clock id,
    60 of them taken from a hash of the URI. Every daemon, before and after any crash, computes the same key, and the
    PDS holds at most one record per key: a second reply to the same post cannot exist. The time part is kept before
    2005, so the key never claims a time ahead of the keys the PDS mints.
    """
    digest = int.from_bytes(hashlib.blake2b(post_uri.encode("utf-8"), digest_size=8).digest(), "big")
    micros = (digest >> TID_CLOCK_BITS) % TID_TIME_SPAN
    return _tid((micros << TID_CLOCK_BITS) | (digest & ((1 << TID_CLOCK_BITS) - 1)))


def _tid(value: int) -> str:
    return "".join(_TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(TID_LENGTH)))


@dataclass(frozen=True, slots=True)
class PostFields:
    """What a Mention takes from an app.bsky.feed.post record."""

    text: str
    created_at: str
    parent: str | None  # the post it replies to
    root: str | None  # its thread's first post
    langs: list[str]


def raw_post_fields(raw: Any) -> PostFields | None:
    """The fields of a post record the SDK left untyped, e.g. one over the lexicon's 300 graphemes (a repository may
    hold one: schema validation is the writer's choice). It is still a post that may mention the brand, so it is read
    from its raw JSON instead of being dropped; anything that is not a post with a text gives ``None``."""
    if not isinstance(raw, dict) or raw.get("$type") != "app.bsky.feed.post" or not isinstance(raw.get("text"), str):
        return None
    reply_raw = raw.get("reply")
    reply: dict[str, Any] = reply_raw if isinstance(reply_raw, dict) else {}
    parent, root = reply.get("parent"), reply.get("root")
    langs = raw.get("langs")
    return PostFields(
        raw["text"],
        str(raw.get("createdAt") or ""),
        str(parent["uri"]) if isinstance(parent, dict) and parent.get("uri") else None,
        str(root["uri"]) if isinstance(root, dict) and root.get("uri") else None,
        [str(lang) for lang in langs] if isinstance(langs, list) else [],
    )
