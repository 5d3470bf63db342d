"""The web pages under a busy day's mixed traffic, on SQLite and PostgreSQL, beside a static-page floor.

Run from the repo root: ``python bench/web_load.py [--seconds 15] [--connections 50] [--pg-url URL]``
(``--pg-url`` defaults to $FAIRDESK_TEST_POSTGRES_URL; without either, SQLite only).

Per database, one daemon process serves the pages on loopback exactly as ``fairdesk run`` does (uvicorn, one event
loop, the default thread pool), behind a "proxy" on 127.0.0.1 so that simulated clients have their own addresses
(``web.trusted_proxies``), with the default rate limits. This process drives it with ``--connections`` concurrent
clients for ``--seconds`` per phase:

- **floor**: ``GET /static/style.css`` only: what the same server answers when no page touches the database;
- **mixed**: customers viewing their link page (45 %), adding details on it (10 %), filing the web form (10 %),
  agents opening the queue (20 %) and logging in (5 %, an argon2 hash each), and /healthz (10 %).

It prints requests/s, p50/p95/p99 latency and errors (5xx or no answer) per kind; 429s (rate limits doing their job)
are counted apart. Everything is bounded: loopback only, fixed duration, the daemon stopped and its data removed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIX = (("view", 45), ("details", 10), ("contact", 10), ("queue", 20), ("login", 5), ("healthz", 10))
AGENTS = 10
PASSWORD = "a long bench password"
TICKETS = 60
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def serve(db_url: str, data_dir: str, port: int, ready: Any) -> None:
    """The daemon process: a fresh database with tickets and agents, the pages served until terminated."""
    from datetime import UTC, datetime, timedelta

    import uvicorn

    from fairdesk.app import build
    from fairdesk.config.settings import Settings, WebSettings
    from fairdesk.ticketing.agents import add_agent
    from fairdesk.ticketing.db import make_engine, transaction
    from fairdesk.ticketing.web.app import server_config
    from tests.support import FakeAdapter, fake_classify, mention

    now = datetime.now(UTC)
    texts = ["my router is broken", "charged twice on my bill", "parcel never arrived", "app crashes on login"]
    adapter = FakeAdapter(
        mentions=[
            mention(
                str(i), f"@brand {texts[i % 4]} #{i}", author_handle=f"user{i}", created_at=now - timedelta(minutes=i)
            )
            for i in range(TICKETS)
        ]
    )
    settings = Settings(
        data_dir=Path(data_dir),
        public_url=f"http://127.0.0.1:{port}",
        web=WebSettings(port=port, trusted_proxies=["127.0.0.1"]),
    )
    daemon = build(settings, adapters={("fake", "brand"): adapter}, classify=fake_classify, engine=make_engine(db_url))
    with transaction(daemon.sessions) as session:
        for i in range(AGENTS):
            add_agent(session=session, name=f"agent{i}", password=PASSWORD)
    daemon.poll_all()
    while daemon.send_replies():
        pass
    tokens = [m.group(1) for r in adapter.posted if (m := re.search(r"/t/([A-Za-z0-9_-]{22,})", r.text))]
    server = uvicorn.Server(server_config(daemon.web_app, "127.0.0.1", port))
    ready.put(tokens)
    server.run()
    daemon.close()


@dataclass
class Tally:
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    limited: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Visitor:
    """One simulated person (customer or agent) with their own address, cookies and CSRF token."""

    def __init__(self, base: str, n: int) -> None:
        self.client = httpx.AsyncClient(
            base_url=base, headers={"X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}, timeout=60
        )
        self.csrf = ""
        self.logged_in = False
        self.agent = f"agent{n % AGENTS}"

    async def token(self) -> str:
        if not self.csrf:
            page = await self.client.get("/contact")
            found = CSRF.search(page.text)
            self.csrf = found.group(1) if found else ""
        return self.csrf

    async def request(self, kind: str, tokens: list[str]) -> httpx.Response:
        link = f"/t/{random.choice(tokens)}"
        if kind == "floor":
            return await self.client.get("/static/style.css")
        if kind == "view":
            return await self.client.get(link)
        if kind == "healthz":
            return await self.client.get("/healthz")
        if kind == "details":
            return await self.client.post(link, data={"csrf": await self.token(), "details": "order 12 is missing"})
        if kind == "contact":
            data = {"csrf": await self.token(), "email": "c@example.com", "description": "my bill is wrong"}
            return await self.client.post("/contact", data=data)
        if kind == "login" or (kind == "queue" and not self.logged_in):
            data = {"csrf": await self.token(), "name": self.agent, "password": PASSWORD}
            answer = await self.client.post("/agent/login", data=data)
            self.logged_in = answer.status_code == 303
            if kind == "login":
                return answer
        return await self.client.get("/agent")


async def drive(
    base: str, tokens: list[str], kinds: list[str], seconds: float, connections: int
) -> tuple[Tally, float]:
    tally = Tally()
    weights = [w for k, w in MIX if k in kinds] if kinds != ["floor"] else [1]
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        visitor = Visitor(base, next(counter))
        try:
            while time.monotonic() < deadline:
                kind = random.choices(kinds, weights)[0]
                started = time.perf_counter()
                try:
                    answer = await visitor.request(kind, tokens)
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 599
                tally.times[kind].append(time.perf_counter() - started)
                if status >= 500:
                    tally.errors[kind] += 1
                elif status == 429:
                    tally.limited[kind] += 1
                if random.random() < 0.05:  # people come and go: a new visitor, a new address and session
                    await visitor.client.aclose()
                    visitor = Visitor(base, next(counter))
        finally:
            await visitor.client.aclose()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return tally, time.monotonic() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, tally: Tally, elapsed: float) -> None:
    every = [t for times in tally.times.values() for t in times]
    rows = [(kind, times) for kind, times in sorted(tally.times.items())]
    if len(rows) > 1:
        rows.append(("all", every))
    for kind, times in rows:
        errors = sum(tally.errors.values()) if kind == "all" else tally.errors[kind]
        limited = sum(tally.limited.values()) if kind == "all" else tally.limited[kind]
        print(
            f"  {name:<6} {kind:<8} {len(times):>6} req {len(times) / elapsed:>8.1f}/s  "
            f"p50 {pct(times, 0.5) * 1000:>7.1f} ms  p95 {pct(times, 0.95) * 1000:>7.1f} ms  "
            f"p99 {pct(times, 0.99) * 1000:>7.1f} ms  errors {errors}  429 {limited}"
        )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(label: str, db_url: str, seconds: float, connections: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fairdesk-web-load-") as tmp:
        port = free_port()
        url = db_url or f"sqlite:///{Path(tmp) / 'fairdesk.db'}"
        spawn = multiprocessing.get_context("spawn")
        ready = spawn.Queue()
        daemon = spawn.Process(target=serve, args=(url, tmp, port, ready), daemon=True)
        daemon.start()
        try:
            tokens = ready.get(timeout=180)
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(f"{base}/healthz", timeout=2)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            print(f"{label}: {connections} connections, {seconds:.0f} s per phase, {len(tokens)} customer links")
            floor, elapsed = asyncio.run(drive(base, tokens, ["floor"], seconds, connections))
            report("floor", floor, elapsed)
            mixed, elapsed = asyncio.run(drive(base, tokens, [k for k, _ in MIX], seconds, connections))
            report("mixed", mixed, elapsed)
        finally:
            daemon.terminate()
            daemon.join(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each phase (default 15)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--pg-url", default=os.environ.get("FAIRDESK_TEST_POSTGRES_URL", ""), help="PostgreSQL URL")
    args = parser.parse_args()
    if not 1 <= args.connections <= 500 or not 1 <= args.seconds <= 600:
        parser.error("keep it bounded: 1-500 connections, 1-600 seconds")
    run("SQLite", "", args.seconds, args.connections)
    if args.pg_url:
        with scratch_database(args.pg_url) as url:
            run("PostgreSQL", url, args.seconds, args.connections)


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the given server for this run, dropped afterwards (never the one in the URL)."""
    from sqlalchemy import create_engine, text

    server_url = server_url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"fairdesk_web_load_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server_url.rpartition('/')[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
