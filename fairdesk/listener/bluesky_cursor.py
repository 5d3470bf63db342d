"""The Bluesky fetch cursor: the newest notification time seen, and short hashes of the posts handled near it."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

# The AppView sorts a notification at min(indexedAt, record createdAt), so a post from a device whose clock runs
# behind lands below notifications we have already read. Each fetch re-reads this far back and skips what it handled.
LOOKBACK = timedelta(minutes=15)
CURSOR_VERSION = 1


@dataclass(frozen=True)
class FetchCursor:
    """What fetch() needs to resume: the newest notification time seen and the posts handled near it.

    ``handled`` maps a short hash of each handled post URI to its notification time in epoch milliseconds; only
    entries within LOOKBACK of ``newest`` are kept, which bounds the cursor's size by the mention rate.
    """

    newest: datetime | None = None
    handled: dict[str, int] = field(default_factory=dict)

    def encode(self) -> str:
        newest_ms = _ms(self.newest) if self.newest else None
        handled = sorted([key, newest_ms - ms if newest_ms is not None else ms] for key, ms in self.handled.items())
        return json.dumps({"v": CURSOR_VERSION, "t": newest_ms, "h": handled}, separators=(",", ":"))

    @classmethod
    def decode(cls, cursor: str) -> FetchCursor:
        """Parse a cursor made by encode(); raise ValueError if it is not one."""
        try:
            data = json.loads(cursor)
            if data.get("v") != CURSOR_VERSION:
                raise ValueError(f"unknown cursor version {data.get('v')!r}")
            newest_ms = data["t"]
            newest = _from_ms(int(newest_ms)) if newest_ms is not None else None
            handled = {
                str(key): (int(newest_ms) - int(delta) if newest_ms is not None else int(delta))
                for key, delta in data["h"]
            }
        except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a Bluesky cursor: {exc}") from exc
        return cls(newest, handled)

    def seen(self, uri: str) -> bool:
        return uri_key(uri) in self.handled

    def advanced(self, newest: datetime | None, handled: Iterable[tuple[str, datetime]]) -> FetchCursor:
        """A cursor that also covers ``handled`` (uri, time), with everything older than the window dropped."""
        merged = dict(self.handled)
        for uri, at in handled:
            merged[uri_key(uri)] = _ms(at)
        if newest is None:
            return FetchCursor(None, merged)
        floor = _ms(newest - LOOKBACK)
        return FetchCursor(newest, {key: ms for key, ms in merged.items() if ms >= floor})


def uri_key(uri: str) -> str:
    """A 12-character hash of a post URI: what the cursor keeps instead of the URI itself."""
    return base64.urlsafe_b64encode(hashlib.blake2b(uri.encode("utf-8"), digest_size=9).digest()).decode("ascii")


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def parse_time(value: str) -> datetime:
    """An atproto datetime string as an aware UTC datetime (naive values are taken as UTC)."""
    at = datetime.fromisoformat(value)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
