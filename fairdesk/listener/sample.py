"""The built-in sample platform: replays a bundled JSONL feed at a steady pace and records replies locally."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fairdesk.config.settings import ConfigError, SampleAccount, Settings
from fairdesk.listener.base import Batch, FoundBy, Mention, MentionKind, PermanentError, Reply, TransientError

logger = logging.getLogger(__name__)

PLATFORM = "sample"
BUNDLED_FEED = Path(__file__).resolve().parent / "data" / "sample_feed.jsonl"
_TICK = timedelta(microseconds=1)


def load_feed(path: Path) -> list[dict[str, Any]]:
    posts = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    posts.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not a JSON object: {exc}") from exc
    return posts


def _load_configured_feed(account: str, feed: Path | None) -> list[dict[str, Any]]:
    # Checked when the daemon starts, so a wrong path is one line naming the key rather than a failing poll job.
    if feed is None:
        return load_feed(BUNDLED_FEED)
    try:
        return load_feed(feed)
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError):
            problem = exc.strerror or str(exc)
        elif isinstance(exc, UnicodeDecodeError):
            problem = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        else:
            problem = str(exc).removeprefix(f"{feed}:")
        raise ConfigError(
            f"config key `sample.{account}.feed`: cannot read {feed} ({problem}); fix the path or remove the key "
            "to replay the bundled feed"
        ) from exc


def to_mention(payload: dict[str, Any], *, account: str, handle: str, public_url: str) -> Mention:
    """Normalise one raw sample post. Everything about the author except id and handle is dropped here."""
    author = payload["author"]
    mentioned = {h.lower().lstrip("@") for h in payload.get("mentions", [])}
    addressed = handle.lower() in mentioned
    return Mention(
        platform=PLATFORM,
        account=account,
        post_id=str(payload["id"]),
        author_id=str(author["id"]),
        author_handle=str(author["handle"]),
        text=str(payload.get("text", "")),
        created_at=datetime.fromisoformat(payload["created_at"].replace("Z", "+00:00")).astimezone(UTC),
        url=f"{public_url}/sample#post-{payload['id']}",
        kind=MentionKind(payload.get("kind", "mention")),
        found_by=FoundBy.MENTION if addressed else FoundBy.SEARCH,
        addresses_account=addressed,
        from_account=str(author["handle"]).lower() == handle.lower(),
        reply_to_id=payload.get("in_reply_to"),
        conversation_id=payload.get("conversation_id"),
        lang=payload.get("lang"),
    )


class SampleAdapter:
    """Releases ``per_poll`` posts per fetch; the cursor is the index of the next post.

    The bundled feed's dates are only an order: each post is dated when a fetch first releases it, spread over the
    poll interval just before that moment, so the demo looks the same on any day (a configured ``feed`` keeps the
    dates it was written with). A post keeps the date it was first given, so fetching a cursor again returns the same.

    Replies are appended (and fsynced) to ``replies_path`` instead of being posted: that file plays the platform.
    """

    platform = PLATFORM

    def __init__(
        self,
        name: str,
        settings: SampleAccount,
        *,
        replies_path: Path,
        public_url: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.account = name
        self.handle = settings.handle
        self.per_poll = settings.per_poll
        self.public_url = public_url
        self.replies_path = replies_path
        self._posts = _load_configured_feed(name, settings.feed)
        self._lock = threading.Lock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._replay = settings.feed is None
        self._spacing = timedelta(seconds=settings.poll_seconds / settings.per_poll)
        self._dated: list[str] = []  # created_at (ISO) of the first len(_dated) posts, once released

    def _date(self, end: int) -> None:
        """Date posts up to index ``end`` (exclusive) that have no date yet: evenly over the time since the latest
        dated post, at most one poll interval back, the last one now; strictly increasing, in feed order."""
        count = min(end, len(self._posts)) - len(self._dated)
        if not self._replay or count <= 0:
            return
        now = self._clock().astimezone(UTC)
        start = now - self._spacing * count
        if self._dated:
            start = max(start, datetime.fromisoformat(self._dated[-1]))
        span = (now - start) // _TICK
        previous = start
        for k in range(1, count + 1):
            previous = max(start + _TICK * (span * k // count), previous + _TICK)
            self._dated.append(previous.isoformat())

    def _mentions(self, start: int, end: int) -> list[Mention]:
        with self._lock:
            self._date(end)
            chunk = [
                p | {"created_at": self._dated[i]} if self._replay else p
                for i, p in enumerate(self._posts[start:end], start)
            ]
        return [to_mention(p, account=self.account, handle=self.handle, public_url=self.public_url) for p in chunk]

    def fetch(self, since: str | None) -> Batch:
        try:
            start = int(since or 0)
        except ValueError as exc:
            raise TransientError(f"bad sample cursor {since!r}") from exc
        mentions = self._mentions(start, start + self.per_poll)
        return Batch(mentions=mentions, cursor=str(start + len(mentions)))

    def send_reply(self, reply: Reply) -> str:
        if not reply.in_reply_to.addresses_account:
            raise PermanentError("the post does not mention the account")
        with self._lock:
            if (existing := self.find_reply(reply.in_reply_to)) is not None:
                raise PermanentError(f"already replied ({existing})")
            remote_id = f"reply-{reply.in_reply_to.post_id}"
            record = {
                "id": remote_id,
                "account": self.account,
                "in_reply_to": reply.in_reply_to.post_id,
                "to_handle": reply.in_reply_to.author_handle,
                "text": reply.text,
                "sent_at": datetime.now(UTC).isoformat(),
            }
            self.replies_path.parent.mkdir(parents=True, exist_ok=True)
            with self.replies_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        return remote_id

    def find_reply(self, mention: Mention) -> str | None:
        for record in self.sent():
            if record["in_reply_to"] == mention.post_id:
                return str(record["id"])
        return None

    def sent(self) -> list[dict[str, Any]]:
        """Every reply this account has 'posted', oldest first."""
        if not self.replies_path.exists():
            return []
        with self.replies_path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def check(self) -> str:
        """The feed was read and parsed at start; say how much it holds."""
        return f"feed readable: {len(self._posts)} posts"

    def history(self, since: datetime) -> Batch:
        """Every post of the feed created at or after ``since`` (the whole feed is what this platform holds). Posts
        no poll has released yet are dated now, as if released at once; later polls give them the same dates."""
        mentions = self._mentions(0, len(self._posts))
        return Batch(mentions=[m for m in mentions if m.created_at >= since], cursor=None)

    def close(self) -> None:
        pass


def make_sample_adapter(name: str, account: SampleAccount, settings: Settings) -> SampleAdapter:
    return SampleAdapter(
        name,
        account,
        replies_path=settings.data_dir / "sample" / f"replies-{name}.jsonl",
        public_url=settings.public_url,
    )
