"""X API v2 wire JSON to a Mention: what the adapter keeps of a post (and nothing about its author's reach)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fairdesk.listener.base import FoundBy, Mention, MentionKind, PermanentError

__all__ = ["NO_LANGUAGE", "PLATFORM", "raise_if_user_missing", "to_mention"]

PLATFORM = "x"
NO_LANGUAGE = frozenset({"und", "zxx", "qme", "qht", "qam", "qct", "qst"})  # X's "no detectable language" tags


def to_mention(
    tweet: Mapping[str, Any], handles: Mapping[str, str], found_by: FoundBy, *, account: str, brand_user_id: str | None
) -> Mention:
    """One tweet object (``data[]`` of a v2 response) with the expanded users' handles; raises on a malformed one."""
    post_id = str(tweet["id"])
    if not post_id.isdigit():
        raise ValueError(f"post id {post_id!r}")
    author_id = str(tweet.get("author_id") or "")
    handle = handles.get(author_id, "")
    refs = {ref["type"]: str(ref["id"]) for ref in tweet.get("referenced_tweets") or ()}
    if "retweeted" in refs:
        kind = MentionKind.REPOST
    elif "quoted" in refs:
        kind = MentionKind.QUOTE
    elif "replied_to" in refs:
        kind = MentionKind.REPLY
    else:
        kind = MentionKind.MENTION
    # A repost addresses no one, whatever the original said; keyword search leaves out posts that @mention the
    # brand (they come from the mentions timeline), so its hits never address it.
    addresses = found_by is FoundBy.MENTION and kind is not MentionKind.REPOST
    created_at = datetime.fromisoformat(tweet["created_at"])
    if created_at.tzinfo is None:
        raise ValueError("created_at without a time zone")
    lang = tweet.get("lang")
    return Mention(
        platform=PLATFORM,
        account=account,
        post_id=post_id,
        author_id=author_id,
        author_handle=handle,
        text=str(tweet["text"]),
        created_at=created_at,
        url=f"https://x.com/{handle}/status/{post_id}" if handle else f"https://x.com/i/web/status/{post_id}",
        kind=kind,
        found_by=found_by,
        addresses_account=addresses,
        from_account=author_id == brand_user_id,
        reply_to_id=refs.get("replied_to"),
        conversation_id=tweet.get("conversation_id"),
        lang=lang if lang and lang not in NO_LANGUAGE else None,
    )


def raise_if_user_missing(body: Mapping[str, Any], user_id: str, account: str) -> None:
    """X answers 200 with only a resource-not-found error when the user id does not exist."""
    if "data" in body:
        return
    for error in body.get("errors") or ():
        if isinstance(error, dict) and str(error.get("type", "")).endswith("/resource-not-found"):
            raise PermanentError(f"X has no user {user_id}; check x.{account}.user_id")
