"""`fairdesk backfill`: re-read X (the fake server) since a date, record outcomes, reply only to young posts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select
from typer.testing import CliRunner

from fairdesk.app import build
from fairdesk.backfill import backfill
from fairdesk.cli import app
from fairdesk.config.settings import ReplySettings, Settings, XAccount
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import AccountState, LedgerEntry, Outbox, Ticket
from tests.fakes.x_server import FakeXServer
from tests.support import fake_classify


def test_backfill_records_what_x_still_holds_and_replies_only_to_young_posts(
    x_server: FakeXServer, x_account: XAccount, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    too_old = x_server.post("ann", "@acme_support router broken", created_at=now - timedelta(days=10))
    old = x_server.post("bo", "@acme_support outage since Monday, broken", created_at=now - timedelta(days=3))
    praise = x_server.post("cy", "@acme_support love it", created_at=now - timedelta(days=2))
    young = x_server.post("di", "@acme_support app broken", created_at=now - timedelta(hours=5))
    settings = Settings(data_dir=tmp_path / "data", x={"brand": x_account}, reply=ReplySettings(max_age_hours=48))
    daemon = build(settings, classify=fake_classify)
    seen: list[tuple[str, int, int]] = []
    try:
        (result,) = backfill(daemon, now - timedelta(days=4), progress=lambda *p: seen.append(p))
        again = backfill(daemon, now - timedelta(days=4))[0]
        with transaction(daemon.sessions) as session:
            ledger = {e.post_id: e.outcome for e in session.exec(select(LedgerEntry))}
            tickets = {t.post_id for t in session.exec(select(Ticket))}
            replies = {o.in_reply_to for o in session.exec(select(Outbox))}
            cursor = session.get(AccountState, ("x", "brand"))
    finally:
        daemon.close()
    assert ledger == {old: "ticketed", praise: "skipped", young: "ticketed"}  # nothing from before --since
    assert too_old not in ledger
    assert tickets == {old, young}
    assert replies == {young}  # 3 days old is past reply.max_age_hours: a ticket, no public reply
    assert (result.fetched, result.new, result.replies_queued) == (3, 3, 1)
    assert seen == [("x/brand", 0, 3), ("x/brand", 3, 3)]
    assert (again.fetched, again.new) == (3, 0)  # the ledger makes a second run a no-op
    assert cursor is None  # the poll's cursor is not touched
    start_times = {r.query.get("start_time") for r in x_server.requests("mentions")}
    assert start_times == {(now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_backfill_command_prints_progress_and_a_summary(
    x_server: FakeXServer, x_account: XAccount, tmp_path: Path, monkeypatch
) -> None:
    x_server.post("di", "@acme_support app broken", created_at=datetime.now(UTC) - timedelta(hours=1))
    config = tmp_path / "fairdesk.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[x.brand]\nhandle = "{x_account.handle}"\nuser_id = "{x_account.user_id}"\n'
        f'api_base_url = "{x_account.api_base_url}"\n',
        encoding="utf-8",
    )
    for key, value in x_server.account_secrets().items():
        monkeypatch.setenv(f"FAIRDESK_X__BRAND__{key.upper()}", value)
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    result = CliRunner().invoke(app, ["backfill", "--since", since, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "backfill x/brand: 1/1 posts recorded" in result.stderr
    assert "x/brand: 1 posts read, 1 new" in result.stdout
