"""Bluesky mention-to-ticket latency on the local AT Protocol network, and HTTP requests per poll.

Run from the repo root: ``python bench/bluesky_latency.py [--mentions 60] [--interval 1.0] [--mode daemon|adapter]``.
It uses a network already up (``scripts/bluesky-network start``, or FAIRDESK_BLUESKY_PDS) or starts one and stops it
afterwards. A customer posts mentions at random moments while a poller runs every ``--interval`` seconds:

- ``daemon`` (default): the real composition, ``build()`` with the Bluesky adapter and the content-only fake classifier;
  a post's latency runs from just before the customer's createRecord to the end of the poll that filed its ticket.
- ``adapter``: ``BlueskyAdapter.fetch`` alone; latency runs to the end of the fetch that returned the post.

Expect about the AppView's indexing delay (~0.1 s) plus half the interval on the median, and up to the full interval
on p95. Requests per poll are counted at the HTTP transport, by XRPC method.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr  # noqa: E402

from fairdesk.config.settings import BlueskyAccount, Settings  # noqa: E402
from fairdesk.listener.bluesky import BlueskyAdapter  # noqa: E402
from tests.peers import bluesky as peers  # noqa: E402


class Poller(threading.Thread):
    """Polls every ``interval`` seconds; records when each post id was first seen done (monotonic time)."""

    def __init__(self, poll_once, interval: float) -> None:
        super().__init__(daemon=True)
        self.poll_once, self.interval = poll_once, interval
        self.done: dict[str, float] = {}
        self.polls = 0
        self.poll_seconds: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            ids = self.poll_once()
            finished = time.monotonic()
            self.polls += 1
            self.poll_seconds.append(finished - started)
            for post_id in ids:
                self.done.setdefault(post_id, finished)
            self.stop.wait(max(self.interval - (finished - started), 0))


def adapter_poller(adapter: BlueskyAdapter, interval: float) -> tuple[Poller, object]:
    state = {"cursor": adapter.fetch(None).cursor}

    def poll() -> list[str]:
        batch = adapter.fetch(state["cursor"])
        state["cursor"] = batch.cursor
        return [m.post_id for m in batch.mentions]

    return Poller(poll, interval), None


def daemon_poller(adapter: BlueskyAdapter, settings: Settings, interval: float) -> tuple[Poller, object]:
    from sqlmodel import select

    from fairdesk.app import build
    from fairdesk.ticketing.db import transaction
    from fairdesk.ticketing.models import Ticket
    from tests.support import fake_classify

    daemon = build(settings, adapters={("bluesky", "bench"): adapter}, classify=fake_classify)
    daemon.poll_all()  # the first poll takes the newest page; the measured posts come after it

    def poll() -> list[str]:
        daemon.poll_all()
        with transaction(daemon.sessions) as session:
            return list(session.exec(select(Ticket.post_id)))

    return Poller(poll, interval), daemon


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=60, help="mentions to post (>= 50 for a meaningful p95)")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval in seconds")
    parser.add_argument("--mode", choices=("daemon", "adapter"), default="daemon")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    import os

    started_network = False
    pds = os.environ.get(peers.PDS_ENV, "").rstrip("/") or peers.DEFAULT_PDS
    if not os.environ.get(peers.PDS_ENV) and not peers.network_running():
        peers.start_network()
        started_network = True
    peer = peers.BlueskyPeer(pds)
    transport = peers.CountingTransport()
    closer = None
    try:
        brand, customer = peer.create_account("bbench"), peer.create_account("cbench")
        account = BlueskyAccount(handle=brand.handle, app_password=SecretStr(peer.app_password(brand)), service_url=pds)
        adapter = BlueskyAdapter("bench", account, transport=transport)
        with tempfile.TemporaryDirectory() as data_dir:
            if args.mode == "daemon":
                settings = Settings(data_dir=Path(data_dir), bluesky={"bench": account})
                poller, closer = daemon_poller(adapter, settings, args.interval)
            else:
                poller, closer = adapter_poller(adapter, args.interval)
            base_requests = Counter(transport.counts)
            poller.start()
            posted: dict[str, float] = {}
            for n in range(args.mentions):
                time.sleep(rng.uniform(0, args.interval))  # land at every phase of the poll cycle
                t0 = time.monotonic()
                post = peer.post(customer, f"#{n} ", mention=brand, after=" my order never arrived, still waiting")
                posted[post.uri] = t0
            peer.wait_for(lambda: set(posted) <= set(poller.done), "every mention handled", timeout=60)
            poller.stop.set()
            poller.join()
            if closer is not None:
                closer.close()
                closer = None
    finally:
        if closer is not None:
            closer.close()
        peer.close()
        if started_network:
            peers.stop_network()

    latencies = [poller.done[uri] - t0 for uri, t0 in posted.items()]
    requests = Counter(transport.counts)
    requests.subtract(base_requests)
    total = sum(requests.values())
    per_method = ", ".join(f"{k} {v / poller.polls:.2f}" for k, v in sorted(requests.items()) if v)
    print(f"mode {args.mode}, {len(latencies)} mentions, poll interval {args.interval:.2f} s, {poller.polls} polls")
    until = "ticket" if args.mode == "daemon" else "fetch"
    print(
        f"mention-to-{until} latency s: median {statistics.median(latencies):.3f}"
        f"  p95 {percentile(latencies, 0.95):.3f}  min {min(latencies):.3f}  max {max(latencies):.3f}"
    )
    print(f"poll duration s: median {statistics.median(poller.poll_seconds):.3f}  max {max(poller.poll_seconds):.3f}")
    print(f"requests per poll: {total / poller.polls:.2f} ({per_method})")


if __name__ == "__main__":
    main()
