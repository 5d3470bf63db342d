"""The soak's platforms: the fake X server with a timed request log, a steady mention poster, faults, a sample feed."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.x_server import FakeXServer, Fault

logger = logging.getLogger(__name__)

SAMPLE_HANDLE = "fairdesk_demo"
UNLIMITED = 10**9  # requests per window: the soak measures the daemon, not X's quotas
AUTHORS = 1500  # a pool, so some customers post more than once (follow-ups join their ticket)
FOLLOW_UP_SHARE = 0.05
COMPLAINT_SHARE = 0.6
# A client timeout needs an answer later than listener/x.py's 10 s request timeout.
TIMEOUT_DELAY = 10.5
COMPLAINTS = (
    "@{brand} my order #{n} never arrived and nobody answers the phone",
    "@{brand} third day without internet, still waiting for the technician (case {n})",
    "@{brand} you charged me twice this month, I want a refund. Account {n}",
    "@{brand} the app crashes every time I try to pay my bill, ticket {n} went nowhere",
    "@{brand} an hour on hold again, this is ridiculous. Ref {n}",
    "@{brand} my router keeps dropping the connection since the update #{n}",
    "@{brand} still no refund for order {n} after three weeks, fix this",
    "@{brand} the technician never showed up today, I wasted a day off for nothing ({n})",
)
OTHERS = (
    "@{brand} thanks, the new app is great! #{n}",
    "@{brand} what time does the shop on Main St open? ({n})",
    "@{brand} love the faster speeds, well done team {n}",
    "@{brand} congrats on the launch today #{n}",
    "@{brand} is the new plan available in my area? postcode {n}",
)
FOLLOW_UPS = ("@{brand} any news? still waiting ({n})", "@{brand} hello? nobody has answered yet #{n}")


def mention_text(rng: random.Random, brand: str, n: int, *, follow_up: bool = False) -> str:
    pool: tuple[str, ...]
    if follow_up:
        pool = FOLLOW_UPS
    else:
        pool = COMPLAINTS if rng.random() < COMPLAINT_SHARE else OTHERS
    return rng.choice(pool).format(brand=brand, n=n)


class SoakXServer(FakeXServer):
    """The fake X server, plus when each API request arrived (the server's own log has no times)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A SIGKILLed daemon resets its connections; that is the soak working, not an error worth a traceback.
        self._httpd.handle_error = self._dropped  # type: ignore[method-assign,assignment]
        self._times_lock = threading.Lock()
        self.arrivals: list[tuple[float, str, int | None]] = []  # (time.time(), path, daemon pid) of API requests
        self.who: Callable[[int], int | None] = lambda port: None  # client port -> daemon pid, set by the soak

    @staticmethod
    def _dropped(request: object, address: Any) -> None:
        logger.debug("connection from %s dropped", address)

    def handle(self, handler: Any) -> None:
        path = urlsplit(handler.path).path
        if not path.startswith("/_fake/"):
            # Only polls need telling apart; finding a connection's process reads /proc, so not for every request.
            pid = self.who(handler.client_address[1]) if path.endswith("/mentions") else None
            with self._times_lock:
                self.arrivals.append((time.time(), path, pid))
        super().handle(handler)

    def api_calls(self) -> int:
        with self._times_lock:
            return len(self.arrivals)

    def mention_polls(self) -> list[float]:
        """When each mentions request arrived (a poll, whatever its answer)."""
        with self._times_lock:
            return [t for t, path, _ in self.arrivals if path.endswith("/mentions")]

    def polls_by(self, pid: int) -> list[float]:
        """When daemon ``pid`` itself asked for mentions."""
        with self._times_lock:
            return [t for t, path, who in self.arrivals if who == pid and path.endswith("/mentions")]

    def served_ids(self) -> set[str]:
        """Every post id the mentions endpoint returned in a well-formed answer."""
        served: set[str] = set()
        for record in self.requests("mentions"):
            if record.status == 200 and isinstance(record.response, dict):
                served.update(str(t["id"]) for t in record.response.get("data") or ())
        return served

    def lift_rate_limits(self) -> None:
        for endpoint in ("mentions", "search", "timeline", "create", "me", "lookup"):
            self.set_rate_limit(endpoint, UNLIMITED, 900)


@dataclass
class Poster:
    """Posts ``count`` mentions of the brand at ``rate`` per second, in a thread; records each id and time."""

    server: SoakXServer
    count: int
    rate: float
    rng: random.Random
    posted: dict[str, float] = field(default_factory=dict)  # post id -> time.time() when posted
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="soak-poster", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def posted_count(self) -> int:
        with self._lock:
            return len(self.posted)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.posted)

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        brand = self.server.brand.username
        by_author: dict[str, str] = {}
        start = time.monotonic()
        for i in range(self.count):
            delay = start + i / self.rate - time.monotonic()
            if self.stop.wait(max(delay, 0)):
                return
            author = f"soak_customer_{self.rng.randrange(AUTHORS)}"
            parent = by_author.get(author) if self.rng.random() < FOLLOW_UP_SHARE else None
            text = mention_text(self.rng, brand, i, follow_up=parent is not None)
            post_id = self.server.post(author, text, reply_to=parent)
            by_author.setdefault(author, post_id)
            with self._lock:
                self.posted[post_id] = time.time()


@dataclass
class FaultInjector:
    """Queues one fault after every ~1/rate API requests (5xx, timeouts, 429s, malformed bodies, disconnects)."""

    server: SoakXServer
    rate: float
    rng: random.Random
    injected: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self.rate <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _next_gap(self) -> int:
        # Geometric spacing: each request is faulted with probability ~rate, independently.
        gap = 1
        while self.rng.random() >= self.rate and gap < 10_000:
            gap += 1
        return gap

    def _fault(self) -> tuple[str, Fault]:
        roll = self.rng.random()
        if roll < 0.4:
            return "5xx", Fault.error(self.rng.choice((500, 502, 503, 504)))
        if roll < 0.55:
            return "429", Fault.rate_limited(reset_in=self.rng.uniform(0.5, 2.0))
        if roll < 0.75:
            return "malformed", Fault.malformed()
        if roll < 0.9:
            return "disconnect", Fault.disconnect()
        # Half the timeouts still carry the request out: a reply may be posted although the daemon never heard.
        return "timeout", Fault.slow(TIMEOUT_DELAY, process=self.rng.random() < 0.5)

    def _run(self) -> None:
        # At most one fault is queued at a time, so stopping leaves nothing behind but that one.
        due = self.server.api_calls() + self._next_gap()
        while not self.stop.wait(0.02):
            if self.server.api_calls() < due:
                continue
            kind, fault = self._fault()
            self.server.inject("*", fault)
            self.injected[kind] = self.injected.get(kind, 0) + 1
            due = self.server.api_calls() + 1 + self._next_gap()


def write_sample_feed(path: Path, count: int, rng: random.Random) -> list[str]:
    """A JSONL feed for the sample adapter (format: listener/data/README.md); returns its post ids in order."""
    start = datetime.now(UTC) - timedelta(days=1)
    ids = []
    with path.open("w", encoding="utf-8") as fh:
        for i in range(count):
            post_id = f"soak{i:06d}"
            author = rng.randrange(AUTHORS)
            payload = {
                "id": post_id,
                "created_at": (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "kind": "mention",
                "text": mention_text(rng, SAMPLE_HANDLE, i),
                "lang": "en",
                "author": {
                    "id": f"su{author}",
                    "handle": f"sample_customer_{author}",
                    "display_name": f"Sample Customer {author}",
                    "followers_count": rng.randrange(10, 2_000_000),
                    "following_count": 100,
                    "verified": False,
                    "bio": "",
                },
                "in_reply_to": None,
                "conversation_id": post_id,
                "mentions": [SAMPLE_HANDLE],
            }
            fh.write(json.dumps(payload) + "\n")
            ids.append(post_id)
    return ids


def sample_replies(path: Path) -> list[dict[str, Any]]:
    """What the sample platform 'received': the replies file every daemon appends to."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
