"""X cost: HTTP requests per 1,000 new mentions across polls, and CPU time per 1,000 mentions (adapter and daemon).

Run from the repo root: ``python -m bench.x_requests`` (or ``python bench/x_requests.py``). It starts the fake X
server in a thread, feeds 1,000 new mentions in bursts between polls (some polls find nothing), and counts what the
real XAdapter (tweepy over HTTP) sends. The floor is one request per started 100 mentions in a poll, plus one per
empty poll: X pages hold at most 100 posts and an empty poll still has to ask. With keyword search on, each poll adds
one search page; when the query also matches the mentions, search must not read them a second time.

The daemon figure runs the same bursts through ``fairdesk.app.build()``: the shipped classifier, SQLite, the ledger,
tickets and outbox, then the reply job posting one reply per ticket. CPU is the polling thread's own time
(``time.thread_time``), so the fake server's threads are not counted.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fairdesk.config.settings import XAccount  # noqa: E402
from fairdesk.listener.x import XAdapter  # noqa: E402
from tests.fakes.x_server import FakeXServer  # noqa: E402

# New mentions arriving before each poll: 1,000 in all, three empty polls, bursts over one page.
BURSTS = (120, 0, 45, 300, 0, 0, 85, 250, 5, 195)
# (label, search_query): no search, a query with no hits, and one that matches every mention's text.
SCENARIOS = (
    ("mentions only", None),
    ("mentions + keyword search", "zzz-no-hits"),
    ("search matching mentions", "arrived"),
)


def floor_requests(bursts: tuple[int, ...]) -> int:
    return sum(max(1, math.ceil(n / 100)) for n in bursts)


def run(query: str | None) -> dict[str, float]:
    with FakeXServer() as x:
        account = XAccount(
            handle=x.brand.username,
            user_id=x.brand.id,
            api_base_url=x.url,
            search_query=query,
            **x.account_secrets(),
        )
        adapter = XAdapter("bench", account)
        start = datetime.now(UTC) - timedelta(hours=5)
        x.post("seed", "@acme_support hello", created_at=start)
        cursor = adapter.fetch(None).cursor
        x.clear_log()
        seen, cpu, wall, k = 0, 0.0, 0.0, 0
        for burst in BURSTS:
            for _ in range(burst):
                k += 1
                x.post(
                    f"customer{k % 50}",
                    f"@acme_support order {k} never arrived",
                    created_at=start + timedelta(seconds=k),
                )
            c0, w0 = time.thread_time(), time.perf_counter()
            batch = adapter.fetch(cursor)
            cpu += time.thread_time() - c0
            wall += time.perf_counter() - w0
            assert len(batch.mentions) == burst and not batch.gap, (burst, len(batch.mentions))
            seen += len(batch.mentions)
            cursor = batch.cursor
        adapter.close()
        requests, searches = len(x.requests()), len(x.requests("search"))
    return {"mentions": seen, "requests": requests, "search": searches, "cpu": cpu, "wall": wall}


def run_daemon() -> dict[str, float]:
    import tempfile

    from fairdesk.app import build
    from fairdesk.config.settings import Settings

    with FakeXServer() as x, tempfile.TemporaryDirectory() as tmp:
        account = XAccount(handle=x.brand.username, user_id=x.brand.id, api_base_url=x.url, **x.account_secrets())
        daemon = build(Settings(data_dir=Path(tmp), x={"bench": account}))
        start = datetime.now(UTC) - timedelta(hours=5)
        x.post("seed", "@acme_support hello", created_at=start)
        daemon.poll("x", "bench")
        poll_cpu = reply_cpu = 0.0
        k = sent = 0
        for burst in BURSTS:
            for _ in range(burst):
                k += 1
                x.post(
                    f"customer{k % 50}",
                    f"@acme_support order {k} never arrived, still waiting",
                    created_at=start + timedelta(seconds=k),
                )
            c0 = time.thread_time()
            daemon.poll("x", "bench")
            c1 = time.thread_time()
            while n := daemon.send_replies():
                sent += n
            poll_cpu += c1 - c0
            reply_cpu += time.thread_time() - c1
        daemon.close()
    return {"mentions": k, "poll_cpu": poll_cpu, "reply_cpu": reply_cpu, "sent": sent}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario; CPU is the median")
    args = parser.parse_args(argv)
    floor = floor_requests(BURSTS)
    polls, empty = len(BURSTS), sum(1 for n in BURSTS if n == 0)
    print(
        f"{sum(BURSTS)} new mentions over {polls} polls ({empty} empty); floor {floor} requests "
        f"(1 per started 100 mentions per poll + 1 per empty poll)"
    )
    for label, query in SCENARIOS:
        runs = [run(query) for _ in range(args.repeat)]
        r = runs[0]
        per_k = 1000 / r["mentions"]
        cpu = statistics.median(x["cpu"] for x in runs) * per_k
        wall = statistics.median(x["wall"] for x in runs) * per_k
        floor_here = floor + (polls if query else 0)  # keyword search adds one (empty) page per poll
        print(
            f"{label:>26}: {r['requests'] * per_k:.0f} requests per 1,000 mentions (floor {floor_here * per_k:.0f}; "
            f"{r['search'] * per_k:.0f} of them search); "
            f"adapter CPU {cpu * 1000:.0f} ms per 1,000 mentions (wall {wall * 1000:.0f} ms, loopback)"
        )
    runs = [run_daemon() for _ in range(args.repeat)]
    per_k = 1000 / runs[0]["mentions"]
    poll = statistics.median(r["poll_cpu"] for r in runs) * per_k
    per_reply = statistics.median(r["reply_cpu"] / max(r["sent"], 1) for r in runs)
    print(
        f"{'daemon (build())':>26}: CPU {poll * 1000:.0f} ms per 1,000 mentions to poll, classify and record "
        f"(the adapter alone above is its floor); reply job {per_reply * 1000:.1f} ms CPU per reply sent "
        f"({runs[0]['sent']:.0f} sent before X's 100-posts-per-15-min limit held the rest)"
    )


if __name__ == "__main__":
    main()
