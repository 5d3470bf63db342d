"""Filing into a real Request Tracker: mention -> RT ticket latency, and deliveries per second beside RT's own floor.

Run from the repo root with RT installed (``scripts/rt install``; this starts it if it is not running):
``python bench/rt_delivery.py [--mentions 60] [--backlog 60] [--rate 4]``.

- **Floor**: RT's own REST2 create, measured in the same run: ``--backlog`` tickets created one after another straight
  through httpx with the bot token (what the delivery job's one create costs at best).
- **Throughput**: ``--backlog`` fairdesk tickets already in the database, filed by one delivery pass (one thread, as
  one daemon does): deliveries per second, and the ratio to the floor.
- **Latency**: a running daemon (scheduler, the delivery loop woken by intake) on a platform that publishes
  ``--mentions`` complaints at ``--rate`` per second, polled every second: from the moment a post is published to the
  moment its ticket is filed in RT (``helpdeskdelivery.filed_at``); p50 and p95.

The classifier is the tests' content-only fake: this measures filing, not classifying (``bench/classify_speed.py``
measures that).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from fairdesk.app import build  # noqa: E402
from fairdesk.config.helpdesks import RtHelpdesk as RtSettings  # noqa: E402
from fairdesk.config.settings import Settings  # noqa: E402
from fairdesk.listener.base import Batch, Mention  # noqa: E402
from fairdesk.ticketing.db import make_engine, transaction  # noqa: E402
from fairdesk.ticketing.models import HelpdeskDelivery, LedgerEntry  # noqa: E402
from tests.support import FakeAdapter, fake_classify, mention  # noqa: E402


def rt(*args: str) -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "rt"), *args], check=True, capture_output=True, text=True)
    return done.stdout


def rt_url() -> str:
    if subprocess.run(["bash", str(ROOT / "scripts" / "rt"), "status"], capture_output=True).returncode != 0:
        rt("start")
    status = rt("status")
    return next(p.removeprefix("url=") for p in status.split() if p.startswith("url="))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def floor(url: str, token: str, queue: str, n: int) -> list[float]:
    times = []
    with httpx.Client(base_url=f"{url}/REST/2.0", headers={"Authorization": f"token {token}"}, timeout=30) as client:
        for i in range(n):
            start = time.perf_counter()
            body = {"Queue": queue, "Subject": f"floor {i}", "Content": "x" * 400, "ContentType": "text/plain"}
            client.post("/ticket", json=body).raise_for_status()
            times.append(time.perf_counter() - start)
    return times


def settings_for(tmp: Path, url: str, token: str, queue: str) -> Settings:
    rt_settings = RtSettings(kind="rt", url=url, queue=queue, token=token)  # type: ignore[arg-type]
    return Settings(data_dir=tmp / "data", helpdesk={"rt": rt_settings})  # type: ignore[arg-type]


def throughput(tmp: Path, url: str, token: str, queue: str, n: int) -> float:
    adapter = FakeAdapter(mentions=[mention(str(i), "my router is broken again") for i in range(1, n + 1)])
    engine = make_engine(f"sqlite:///{tmp / 'backlog.db'}")
    daemon = build(settings_for(tmp, url, token, queue), adapters={("fake", "brand"): adapter}, classify=fake_classify,
                   engine=engine)  # fmt: skip
    try:
        daemon.poll_all()
        start = time.perf_counter()
        filed = daemon.deliver()
        elapsed = time.perf_counter() - start
        assert filed == n, f"filed {filed} of {n}"
        return n / elapsed
    finally:
        daemon.close()


class Publishing(FakeAdapter):
    """Publishes one complaint every 1/rate s in a thread; fetch returns what has been published (its real time)."""

    def __init__(self, n: int, rate: float) -> None:
        super().__init__()
        self.total, self.rate = n, rate
        self.published: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def run(self) -> None:
        for i in range(1, self.total + 1):
            now = datetime.now(UTC)
            with self._lock:
                self.mentions.append(mention(str(i), "still no internet, router broken", created_at=now))
                self.published[str(i)] = now
            time.sleep(1 / self.rate)

    def fetch(self, since: str | None) -> Batch:
        with self._lock:
            return super().fetch(since)

    def find_reply(self, m: Mention) -> str | None:
        return super().find_reply(m)


def latency(tmp: Path, url: str, token: str, queue: str, n: int, rate: float) -> list[float]:
    adapter = Publishing(n, rate)
    settings = settings_for(tmp, url, token, queue)
    daemon = build(settings, adapters={("fake", "brand"): adapter}, classify=fake_classify,
                   engine=make_engine(f"sqlite:///{tmp / 'live.db'}"))  # fmt: skip
    daemon.settings.helpdesk["rt"].sync_seconds = 3600  # type: ignore[union-attr]
    daemon.poll_seconds = lambda: {("fake", "brand"): 1.0}  # type: ignore[method-assign]
    daemon.start_scheduler()
    publisher = threading.Thread(target=adapter.run)
    publisher.start()
    try:
        publisher.join()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with transaction(daemon.sessions) as session:
                rows = session.exec(select(HelpdeskDelivery.filed_at, LedgerEntry.post_id).join(
                    LedgerEntry, LedgerEntry.ticket_id == HelpdeskDelivery.ticket_id)).all()  # type: ignore[arg-type]  # fmt: skip
            if len([r for r in rows if r[0]]) >= n:
                break
            time.sleep(0.2)
    finally:
        daemon.close()
    return [(filed - adapter.published[post]).total_seconds() for filed, post in rows if filed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=60)
    parser.add_argument("--backlog", type=int, default=60)
    parser.add_argument("--rate", type=float, default=4.0, help="complaints published per second")
    args = parser.parse_args()
    url, token = rt_url(), rt("token").strip()
    stamp = datetime.now(UTC).strftime("%H%M%S")
    with tempfile.TemporaryDirectory() as tmp:
        queues = [f"bench-{stamp}-{name}" for name in ("floor", "backlog", "live")]
        for queue in queues:
            rt("queue", queue)
        creates = floor(url, token, queues[0], args.backlog)
        per_second = throughput(Path(tmp), url, token, queues[1], args.backlog)
        lat = latency(Path(tmp), url, token, queues[2], args.mentions, args.rate)
    floor_rate = 1 / statistics.median(creates)
    print(f"RT REST2 create (floor, same run): median {statistics.median(creates) * 1000:.0f} ms, "
          f"{floor_rate:.1f} creates/s over {len(creates)}")  # fmt: skip
    print(f"fairdesk deliveries, one pass over a backlog of {args.backlog}: {per_second:.1f}/s "
          f"({per_second / floor_rate:.2f} of the floor)")  # fmt: skip
    print(f"mention -> RT ticket, {len(lat)} of {args.mentions} complaints at {args.rate:g}/s, 1 s polls: "
          f"p50 {statistics.median(lat):.2f} s, p95 {pct(lat, 0.95):.2f} s, max {max(lat):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
