"""Crash-and-fault soak: real daemons on X (fake server) and the sample feed, SIGKILLed at random, then reconciled.

Run from the repo root in the project's virtualenv: ``python bench/soak.py --quick`` (CI: ~1,000 mentions, two
daemons on PostgreSQL) or ``python bench/soak.py`` (10,000 mentions). It runs the fake X server in this process,
posts mentions of the brand at a steady pace (about 80% on X, the rest in a generated sample feed), queues a fault
after ~10% of X API requests, and every ~N mentions SIGKILLs one daemon -- at a random moment, or while it holds a
poll lease, or while it has replies claimed -- and starts it again at once. Then faults and kills stop, the daemons
drain, and what the platforms served and received is reconciled with the ledger, tickets and outbox. Exit status:
0 when nothing was lost, duplicated or stalled and every restart was followed by a poll within the bound; 1 if not;
2 when the soak itself could not run.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine  # noqa: E402

from bench.soak_daemons import Database, Fleet, client_pid, daemon_env, write_config  # noqa: E402
from bench.soak_observe import (  # noqa: E402
    PollWatcher,
    find_victim,
    lease_holders,
    progress,
    reader_engine,
    reply_claimers,
)
from bench.soak_platform import FaultInjector, Poster, SoakXServer, sample_replies, write_sample_feed  # noqa: E402
from bench.soak_report import Figures, Platform, read_database, restart_gaps, table  # noqa: E402

logger = logging.getLogger(__name__)

SAMPLE_SHARE = 0.2
POLL_SECONDS = 1.0
BOUND = 3 * POLL_SECONDS + 10  # a restarted daemon's account is polled again within this many seconds
FIRST_POLL_TIMEOUT = 60.0
DRAIN_CAP = 5  # a drain that keeps making progress may run this many --drain periods
KILL_MODES = ("random moment", "inside a poll", "inside a reply batch")
ADMIN_URL = os.environ.get("FAIRDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, help="mentions to post in all (default 10,000; --quick 1,000)")
    parser.add_argument("--quick", action="store_true", help="the CI size: 1,000 mentions, a kill every ~120")
    parser.add_argument("--daemons", type=int, default=2, help="daemon processes (one on SQLite)")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--kill-every", type=int, help="mentions between kills, +-30%% (default 500; --quick 120)")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of X API requests given a fault")
    parser.add_argument("--rate", type=float, default=10.0, help="X mentions posted per second")
    parser.add_argument(
        "--drain",
        type=float,
        help="after posting, seconds without progress that count as a stall (default 180; --quick 90); "
        f"the drain ends after {DRAIN_CAP} times this in any case",
    )
    parser.add_argument(
        "--start-together", action="store_true", help="start the daemons at the same moment on the fresh database"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres-url", default=ADMIN_URL, help="a PostgreSQL database to create the soak's from")
    parser.add_argument(
        "--source", type=Path, default=REPO, help="run the daemons from this checkout, e.g. an older commit's tree"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (configs, daemon logs)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.mentions = args.mentions or (1000 if args.quick else 10_000)
    args.kill_every = args.kill_every or (120 if args.quick else 500)
    args.drain = args.drain or (90.0 if args.quick else 180.0)
    if args.db == "sqlite" and args.daemons != 1:
        parser.error("SQLite runs one daemon (--daemons 1); several daemons share PostgreSQL")
    return args


class Soak:
    """One run; close() stops and removes everything it made, whatever happened."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = Path(tempfile.mkdtemp(prefix="fairdesk-soak-"))
        self.data = self.work / "data"
        (self.work / "logs").mkdir(parents=True)
        self.sample_count = max(1, round(args.mentions * SAMPLE_SHARE))
        self.x_count = args.mentions - self.sample_count
        self.kills: Counter[str] = Counter()
        self.server: SoakXServer | None = None
        self.database: Database | None = None
        self.engine: Engine | None = None
        self.fleet: Fleet | None = None
        self.poster: Poster | None = None
        self.faults: FaultInjector | None = None
        self.watcher: PollWatcher | None = None

    @property
    def db(self) -> Engine:
        assert self.engine is not None, "setup() makes the engine"
        return self.engine

    def setup(self) -> None:
        args = self.args
        self.server = server = SoakXServer()
        server.start()
        server.lift_rate_limits()
        self.seed_post = server.post("soak_first", f"@{server.brand.username} hello, is anyone there?")
        self.feed = self.work / "feed.jsonl"
        self.feed_ids = write_sample_feed(self.feed, self.sample_count, self.rng)
        self.database = Database(args.db, self.data, args.postgres_url)
        self.engine = reader_engine(self.database.url)
        posting = self.x_count / args.rate
        per_poll = min(100, max(1, math.ceil(self.sample_count * POLL_SECONDS / posting)))
        config = self.work / "fairdesk.toml"
        write_config(
            config,
            data_dir=self.data,
            database_url=self.database.url if args.db == "postgres" else None,
            x_url=server.url,
            x_handle=server.brand.username,
            x_user_id=server.brand.id,
            feed=self.feed,
            sample_per_poll=per_poll,
            poll_seconds=POLL_SECONDS,
        )
        self.fleet = fleet = Fleet(config, self.work / "logs", daemon_env(server.account_secrets()), args.source)
        server_port = int(server.url.rsplit(":", 1)[1])
        server.who = lambda port: client_pid(port, server_port, fleet.live_pids())
        self.fleet.start_all(args.daemons, together=args.start_together)
        self._wait_first_poll()
        self.watcher = PollWatcher(self.db, "sample")
        self.watcher.start()

    def _wait_first_poll(self) -> None:
        # X's first poll reads only the newest page; posting starts once the cursor exists, so nothing is skipped.
        deadline = time.monotonic() + FIRST_POLL_TIMEOUT
        while progress(self.db).ledger.get("x", 0) < 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no X poll recorded within {FIRST_POLL_TIMEOUT:.0f} s of start")
            time.sleep(0.2)

    def run(self) -> None:
        args, fleet = self.args, self.fleet
        assert fleet is not None and self.server is not None
        self.started = time.time()
        self.poster = Poster(self.server, self.x_count, args.rate, self.rng)
        self.faults = FaultInjector(self.server, args.fault_rate, random.Random(args.seed + 1))
        self.poster.start()
        self.faults.start()
        next_kill = args.kill_every * self.rng.uniform(0.7, 1.3)
        deadline = time.monotonic() + 2 * self.x_count / args.rate + 120
        while not self.poster.done and time.monotonic() < deadline:
            fleet.check()
            fleet.sample_rss()
            if self.poster.posted_count() >= next_kill and self._kill():
                next_kill += args.kill_every * self.rng.uniform(0.7, 1.3)
            time.sleep(0.1)
        self.poster.stop.set()
        self.poster.join(10)

    def _kill(self) -> bool:
        assert self.fleet is not None
        ready = {s.process.pid: s for s in self.fleet.slots if s.process is not None and s.alive() and s.ready()}
        if not ready:
            return False  # every daemon is still starting; try again shortly
        mode = self.rng.choice(KILL_MODES)
        pid = None
        if mode == "inside a poll":
            pid = find_victim(self.db, lease_holders, set(ready))
        elif mode == "inside a reply batch":
            pid = find_victim(self.db, reply_claimers, set(ready))
        else:
            time.sleep(self.rng.uniform(0, 2 * POLL_SECONDS))
        if pid is None:
            mode = mode if mode == "random moment" else f"random moment (none seen {mode})"
            pid = self.rng.choice(sorted(ready))
        slot = self.fleet.by_pid(pid)
        if slot is None:  # it died meanwhile; check() restarts it and counts it
            return False
        at = self.fleet.kill_and_restart(slot) - self.started
        self.kills[mode] += 1
        print(f"soak: {at:6.1f} s  SIGKILL daemon {slot.number} (pid {pid}) {mode}; restarted", flush=True)
        return True

    def drain(self) -> bool:
        """Faults and kills stop; wait until every mention is recorded and every reply settled. A slow drain may go
        on while it makes progress; one that makes none for --drain seconds is a stall."""
        assert self.fleet is not None and self.faults is not None and self.poster is not None
        self.faults.halt()
        offered_x = len(self.poster.snapshot()) + 1  # and the seed post
        now = time.monotonic()
        cap, idle_until, last = now + DRAIN_CAP * self.args.drain, now + self.args.drain, None
        while time.monotonic() < min(cap, idle_until):
            self.fleet.check()
            self.fleet.sample_rss()
            p = progress(self.db)
            seen = (sum(p.ledger.values()), p.sample_cursor, p.unsettled_replies)
            if seen != last:
                last, idle_until = seen, time.monotonic() + self.args.drain
            if (
                p.ledger.get("x", 0) >= offered_x
                and p.sample_cursor >= len(self.feed_ids)
                and p.ledger.get("sample", 0) >= len(self.feed_ids)
                and p.unsettled_replies == 0
            ):
                return True
            time.sleep(1)
        return False

    def reckon(self, drained: bool) -> Figures:
        assert self.fleet is not None and self.server is not None and self.poster and self.watcher and self.faults
        end = time.time()
        self.fleet.stop()  # a clean stop; nothing changes in the database after this
        self.watcher.halt()
        brand = self.server.brand.username
        posted = self.poster.snapshot()
        x_replies = [t for t in self.server.posts_by(brand) if t.ref("replied_to")]
        x = Platform(
            "x",
            offered={self.seed_post, *posted},
            served=self.server.served_ids(),
            replies=[str(t.ref("replied_to")) for t in x_replies],
        )
        sample_sent = sample_replies(self.data / "sample" / "replies-soak.jsonl")
        sample = Platform(
            "sample", offered=set(self.feed_ids), served=set(), replies=[r["in_reply_to"] for r in sample_sent]
        )
        tickets, dup_tickets, outbox, sent = read_database(self.db, [x, sample])
        sample.served = set(self.feed_ids[: outbox.pop("_sample_cursor")])
        missing = len(sent.get("x", set()) - set(x.replies)) + len(sent.get("sample", set()) - set(sample.replies))
        latencies = [
            (t.created_at - self.server.tweet(str(t.ref("replied_to"))).created_at).total_seconds()
            for t in x_replies
            if t.ref("replied_to") in posted
        ]
        restarts = [at for at, _ in self.fleet.restarts]
        gaps = {
            "x": restart_gaps(restarts, self.server.mention_polls(), end),
            "sample": restart_gaps(restarts, self.watcher.polls(), end),
        }
        own = [restart_gaps([at], self.server.polls_by(pid), math.inf)[0] for at, pid in self.fleet.restarts]
        return Figures(
            platforms=[x, sample],
            tickets=tickets,
            duplicate_tickets=dup_tickets,
            outbox=outbox,
            sent_not_on_platform=missing,
            gaps=gaps,
            own_gaps=own,
            bound=BOUND,
            latencies=latencies,
            max_rss_kb=self.fleet.max_rss_kb,
            kills=self.kills,
            exits=self.fleet.exits,
            faults=dict(self.faults.injected),
            drained=drained,
            wall=end - self.started,
        )

    def close(self) -> None:
        for part in (self.poster, self.faults, self.watcher):
            if part is not None:
                part.stop.set()
        steps: list[Callable[[], None]] = []
        if self.fleet is not None:
            steps.append(self.fleet.stop)
        if self.server is not None:
            steps.append(self.server.stop)
        if self.engine is not None:
            steps.append(self.engine.dispose)
        if self.database is not None:
            steps.append(self.database.drop)
        for step in steps:
            try:
                step()
            except Exception:  # one failed clean-up step must not skip the others
                logger.exception("soak clean-up step failed")
        if self.args.keep:
            print(f"soak: work folder kept: {self.work}", flush=True)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    signal.signal(signal.SIGTERM, _terminate)  # clean up daemons and the database on SIGTERM as on Ctrl+C
    params = {
        "mentions": args.mentions,
        "daemons": args.daemons,
        "db": args.db,
        "kill-every": args.kill_every,
        "fault-rate": args.fault_rate,
        "rate": f"{args.rate:g}/s",
        "seed": args.seed,
    }
    if args.start_together:
        params["start"] = "together"
    if args.source.resolve() != REPO:
        params["daemons from"] = args.source.name
    soak = Soak(args)
    try:
        try:
            soak.setup()
        except Exception as exc:  # no database, a daemon that cannot start, ...: the soak measured nothing
            print(f"soak: could not run: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            args.keep = True  # the daemon logs say why
            return 2
        print(f"soak: {args.daemons} daemon(s) listening; posting {args.mentions:,} mentions", flush=True)
        soak.run()
        drained = soak.drain()
        figures = soak.reckon(drained)
    except KeyboardInterrupt:
        print("soak: interrupted; stopping the daemons and removing what the soak made", file=sys.stderr, flush=True)
        return 130
    finally:
        soak.close()
    print(table(figures, params), flush=True)
    failures = figures.failures()
    for failure in failures:
        print(f"soak: FAIL: {failure}", flush=True)
    if not failures:
        print("soak: OK", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
