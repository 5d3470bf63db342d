"""The adapter contract: Mention, Batch, Reply, the Adapter protocol and the AdapterError tree.

Error tree (translated from SDK errors where they enter, always ``raise ... from exc``)::

    AdapterError
    ├── AuthFailed          credentials refused; the account is unhealthy until fixed
    ├── RateLimited         wait ``retry_after`` seconds before calling again
    ├── TransientError      5xx, timeouts, malformed bodies: retry with backoff
    └── PermanentError      the platform refused this one request for good (e.g. a 403 on a reply)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


class MentionKind(StrEnum):
    """How a post reached the brand."""

    MENTION = "mention"  # the post @mentions the account
    REPLY = "reply"  # a reply in a thread the account is part of
    QUOTE = "quote"  # quotes one of the account's posts
    REPOST = "repost"  # a plain repost/retweet: never ticketed


class FoundBy(StrEnum):
    """Whether the account was addressed or the post was found by keyword listening."""

    MENTION = "mention"
    SEARCH = "search"  # keyword hit: may be ticketed, never replied to


@dataclass(frozen=True, slots=True)
class Mention:
    """One post, normalised at the adapter boundary.

    This is the only type that leaves ``listener/``. By construction it has no field that could hold an
    author's reach: no follower counts, verified badges, metrics, profile data or raw payload.
    """

    platform: str
    account: str  # the configured account name this mention was fetched for
    post_id: str
    author_id: str
    author_handle: str
    text: str
    created_at: datetime
    url: str
    kind: MentionKind = MentionKind.MENTION
    found_by: FoundBy = FoundBy.MENTION
    addresses_account: bool = True  # the post @mentions the brand (the only posts we may reply to)
    from_account: bool = False  # the brand's own post
    reply_to_id: str | None = None  # the post this one replies to
    conversation_id: str | None = None  # the thread root / conversation
    lang: str | None = None


MENTION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Mention))


@dataclass(frozen=True, slots=True)
class Batch:
    """What one fetch returned: mentions oldest-first, and the cursor to pass to the next fetch."""

    mentions: Sequence[Mention]
    cursor: str | None
    gap: bool = False  # more new posts existed than the platform keeps reachable


@dataclass(frozen=True, slots=True)
class Reply:
    """A public reply to send: the text is final (template filled, link included)."""

    account: str
    in_reply_to: Mention
    text: str


class AdapterError(Exception):
    """Base of every error an adapter raises."""


class AuthFailed(AdapterError):
    """The platform refused the credentials."""


class RateLimited(AdapterError):
    """The platform asked us to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(AdapterError):
    """A fault worth retrying later (5xx, timeout, malformed response)."""


class PermanentError(AdapterError):
    """The platform refused this request for good; retrying will not help."""


@runtime_checkable
class Adapter(Protocol):
    """A platform account as seen by the daemon.

    Contract:
    - ``fetch(since)`` returns the posts that are new after cursor ``since`` (``None``: start from what the platform
      offers now), oldest-first, with the cursor to store for the next call. It is idempotent per ``since``: calling
      it twice with the same cursor returns the same posts, so a crash before the cursor is stored loses nothing.
      Reach (followers, verified flags, metrics, profile data) is dropped here and never leaves the adapter.
    - ``send_reply(reply)`` posts one public reply and returns the platform's id for it.
    - ``find_reply(mention)`` returns the id of a reply this account already posted to that mention, or ``None``;
      the outbox uses it to settle a send whose outcome a crash left unknown, so a restart never posts twice.
    - ``close()`` releases connections. Errors are raised as ``AdapterError`` subclasses.
    """

    platform: str
    account: str

    def fetch(self, since: str | None) -> Batch: ...

    def send_reply(self, reply: Reply) -> str: ...

    def find_reply(self, mention: Mention) -> str | None: ...

    def close(self) -> None: ...


@runtime_checkable
class ChecksDeletions(Protocol):
    """Adapters that can tell which of the given posts no longer exist at the source.

    They may also set ``deletion_check_seconds`` (how often to sweep; the platform's rate limits and prices decide)
    and ``deletion_batch`` (post ids per call).
    """

    def deleted_posts(self, post_ids: list[str]) -> set[str]: ...


@runtime_checkable
class ChecksCredentials(Protocol):
    """Adapters that can prove, read-only, that the platform accepts the account's credentials (`fairdesk doctor`).

    ``check()`` returns one line saying what it proved, or raises AdapterError."""

    def check(self) -> str: ...


@runtime_checkable
class ReadsHistory(Protocol):
    """Adapters that can re-read what the platform still holds back to a moment (`fairdesk backfill`).

    ``history(since)`` returns the posts created at or after ``since`` that the platform still serves, oldest first,
    in the same shape ``fetch`` does; it reads no cursor and its batch's cursor is not stored."""

    def history(self, since: datetime) -> Batch: ...
