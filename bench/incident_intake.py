"""What grouping complaints into incidents costs at intake: an outage's posts recorded with incidents on and off.

Each post is recorded in its own transaction through ticketing.intake.record_mention (as a poll records them), on
SQLite or PostgreSQL; the figure is posts per second and the incidents made.

    python bench/incident_intake.py --posts 2000 [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support's fake classifier

from sqlalchemy import create_engine, text  # noqa: E402
from sqlmodel import Session, func, select  # noqa: E402

from fairdesk.listener.base import Mention  # noqa: E402
from fairdesk.ticketing.db import make_engine, migrate, session_factory, transaction  # noqa: E402
from fairdesk.ticketing.incidents import IncidentRules, bind_incident_rules  # noqa: E402
from fairdesk.ticketing.intake import record_mention  # noqa: E402
from fairdesk.ticketing.models import Incident, Ticket  # noqa: E402
from tests.support import fake_classify  # noqa: E402

TOWNS = ("Leeds", "York", "Hull", "Derby", "Bath", "Ely", "Wells", "Ripon", "Truro", "Bangor")
OUTAGE = (
    "@acme internet down again, nothing loads in {town}",
    "@acme is your internet down? nothing loads here in {town}",
    "@acme internet still down in {town}, nothing loads, fix it",
    "@acme charged for a month of internet I never had, refund it",  # billing, alongside
)
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def run(url: str, posts: int, rules: IncidentRules) -> tuple[float, int, int]:
    engine = make_engine(url)
    migrate(engine)
    factory = session_factory(engine)

    def sessions() -> Session:
        return bind_incident_rules(factory(), rules)

    texts = [OUTAGE[n % len(OUTAGE)].format(town=TOWNS[n % len(TOWNS)]) for n in range(posts)]
    verdicts = fake_classify(texts)
    began = time.perf_counter()
    for n, (body, verdict) in enumerate(zip(texts, verdicts, strict=True)):
        mention = Mention(
            platform="bench",
            account="acme",
            post_id=f"p{n}",
            author_id=f"a{n % (posts * 3 // 4)}",  # a quarter post twice
            author_handle=f"h{n}",
            text=body,
            created_at=START + timedelta(seconds=2 * n),
            url=f"https://bench.example/{n}",
            conversation_id=f"p{n}",
        )
        with transaction(sessions) as session:
            record_mention(session=session, mention=mention, verdict=verdict)
    seconds = time.perf_counter() - began
    with transaction(sessions) as session:
        incidents = session.exec(select(func.count()).select_from(Incident)).one()
        tickets = session.exec(select(func.count()).select_from(Ticket)).one()
    engine.dispose()
    return posts / seconds, int(incidents), int(tickets)


def _report(db: str, enabled: bool, rate: float, tickets: int, incidents: int) -> None:
    state = "on " if enabled else "off"
    print(f"{db:8} incidents {state}: {rate:7.1f} posts/s, {tickets} tickets, {incidents} incidents")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--pg-url", default=None, help="also run on a fresh database on this PostgreSQL server")
    args = parser.parse_args()
    for enabled in (False, True):
        rules = IncidentRules(enabled=enabled)
        with tempfile.TemporaryDirectory() as folder:
            rate, incidents, tickets = run(f"sqlite:///{Path(folder) / 'b.db'}", args.posts, rules)
        _report("sqlite", enabled, rate, tickets, incidents)
        if args.pg_url:
            admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            name = f"fairdesk_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                rate, incidents, tickets = run(f"{args.pg_url.rpartition('/')[0]}/{name}", args.posts, rules)
                _report("postgres", enabled, rate, tickets, incidents)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
