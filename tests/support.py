"""Test doubles written as plain code: a content-only fake classifier and an in-memory adapter."""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from fairdesk.listener.base import AdapterError, Batch, FoundBy, Mention, MentionKind, PermanentError, Reply

COMPLAINT_WORDS = re.compile(
    r"\b(broken|still|never|worst|refund|down|dead|waiting|no show|cancel\w*|angry|charged|fix)\b", re.I
)
NO_WORDS = re.compile(r"@\w+|https?://\S+|[^\w]")
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FakeVerdict:
    label: str
    score: float
    severity: int | None
    triage_reason: str | None
    model_version: str = "fake-1"


def fake_classify(texts: Sequence[str]) -> list[FakeVerdict]:
    """Deterministic and content-only: complaint words make a complaint; more of them make it more severe.
    A post with no words once handles and links are gone cannot be judged (like nlp's "empty" triage)."""
    out = []
    for text in texts:
        hits = len(COMPLAINT_WORDS.findall(text))
        if not NO_WORDS.sub("", text).strip():
            out.append(FakeVerdict("not_complaint", 0.1, None, "empty"))
        elif hits:
            out.append(FakeVerdict("complaint", min(0.5 + 0.1 * hits, 0.99), min(hits, 4), None))
        else:
            out.append(FakeVerdict("not_complaint", 0.1, None, None))
    return out


def mention(post_id: str, text: str = "my router is broken", **kw: object) -> Mention:
    """A mention of the brand account 'brand' on the 'fake' platform."""
    defaults: dict[str, object] = dict(
        platform="fake",
        account="brand",
        post_id=post_id,
        author_id=f"author-{post_id}",
        author_handle=f"user_{post_id}",
        text=text,
        created_at=T0 + timedelta(minutes=int(re.sub(r"\D", "", post_id) or 0)),
        url=f"https://fake.example/{post_id}",
        kind=MentionKind.MENTION,
        found_by=FoundBy.MENTION,
    )
    defaults.update(kw)
    return Mention(**defaults)  # type: ignore[arg-type]


@dataclass
class FakeAdapter:
    """Serves a fixed list of mentions, ``per_fetch`` at a time (cursor = index); records replies in memory.

    ``fail_sends`` makes the next N sends raise the given error; ``crash_after_send`` makes a send post and then
    raise, like a process dying before it records the result.
    """

    mentions: list[Mention] = field(default_factory=list)
    per_fetch: int = 100
    platform: str = "fake"
    account: str = "brand"
    posted: list[Reply] = field(default_factory=list)
    fail_sends: list[BaseException] = field(default_factory=list)
    fetch_errors: list[AdapterError] = field(default_factory=list)
    crash_after_send: bool = False
    fetches: list[str | None] = field(default_factory=list)

    def fetch(self, since: str | None) -> Batch:
        self.fetches.append(since)
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        start = int(since or 0)
        chunk = self.mentions[start : start + self.per_fetch]
        return Batch(mentions=chunk, cursor=str(start + len(chunk)))

    def send_reply(self, reply: Reply) -> str:
        if self.fail_sends:
            raise self.fail_sends.pop(0)
        if not reply.in_reply_to.addresses_account:
            raise PermanentError("not addressed to the account")
        self.posted.append(reply)
        if self.crash_after_send:
            raise SimulatedCrash("died after posting")
        return f"r-{reply.in_reply_to.post_id}"

    def find_reply(self, m: Mention) -> str | None:
        for reply in self.posted:
            if reply.in_reply_to.post_id == m.post_id:
                return f"r-{m.post_id}"
        return None

    def close(self) -> None:
        pass

    def replies_to(self, post_id: str) -> list[Reply]:
        return [r for r in self.posted if r.in_reply_to.post_id == post_id]


class SimulatedCrash(BaseException):
    """Escapes every `except Exception`, as a killed process would."""


__all__ = ["FakeAdapter", "FakeVerdict", "SimulatedCrash", "fake_classify", "mention", "replace"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
