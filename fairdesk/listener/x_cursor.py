"""The X adapter's two read streams: the stored cursor and the keyword-search query sent beside the mentions."""

from __future__ import annotations

import json
from collections.abc import Iterable

# Recent search on X takes at most 512 characters a query (1,024 on full-archive search, which fairdesk does not use).
MAX_QUERY_LENGTH = 512


def search_query(query: str, handle: str) -> str:
    """The query sent to recent search: the configured one minus what the mentions timeline already returns.

    Posts that @mention the brand come from the mentions timeline, which alone makes them replyable; searching for
    them again reads (and, on pay-per-use, bills) each one twice. The parentheses keep X's precedence right: AND
    binds tighter than OR, so ``a OR b -@h`` would exclude the mentions from ``b`` only.
    """
    return f"({query.strip()}) -@{handle}"


def check_search_query(query: str, handle: str) -> str | None:
    """Why X would refuse the query fairdesk sends for ``query``, or None if it fits."""
    sent = search_query(query, handle)
    if len(sent) > MAX_QUERY_LENGTH:
        return (
            f"it is {len(sent)} characters once sent as `(...) -@{handle}` (posts that mention the brand come from "
            f"the mentions timeline); X recent search allows {MAX_QUERY_LENGTH}: shorten it by "
            f"{len(sent) - MAX_QUERY_LENGTH}"
        )
    return None


def parse_cursor(since: str | None) -> tuple[str | None, str | None, bool]:
    """(mentions since_id, search since_id, unreadable). A plain id is a mentions-only cursor."""
    if since is None or not since.strip():
        return None, None, False
    since = since.strip()
    if since.isdigit():
        return since, None, False
    try:
        data = json.loads(since)
        mentions, search = data.get("mentions"), data.get("search")
        for value in (mentions, search):
            if value is not None and not (isinstance(value, str) and value.isdigit()):
                raise ValueError(value)
    except (ValueError, AttributeError):
        return None, None, True
    return mentions, search, False


def dump_cursor(mentions: str | None, search: str | None, with_search: bool) -> str | None:
    """The cursor to store: the mentions id alone, or both ids as JSON when keyword search is on."""
    if not with_search:
        return mentions
    if mentions is None and search is None:
        return None
    return json.dumps({"mentions": mentions, "search": search}, separators=(",", ":"), sort_keys=True)


def newest(ids: Iterable[str], since: str | None) -> str | None:
    """The newest of ``ids`` and ``since`` (X ids are time-ordered snowflakes)."""
    return max((*ids, *([since] if since else [])), key=int, default=since)
