"""`fairdesk report`: the terminal table, --csv, --anonymous and the period, on the configured database."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from fairdesk.cli import app
from tests.ticketing.test_report import HANDLE, POST, SINCE, _seed

PERIOD = ["--since", "2026-11-01", "--until", "2026-11-07"]


def _config(tmp_path: Path, db_url: str) -> str:
    path = tmp_path / "fairdesk.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\ndatabase_url = "{db_url}"\n', encoding="utf-8")
    return str(path)


def test_the_table_csv_and_anonymous_export(tmp_path: Path, db_url: str, engine: Engine) -> None:
    _seed(engine)
    config = _config(tmp_path, db_url)
    runner = CliRunner()
    table = runner.invoke(app, ["report", "--config", config, *PERIOD])
    assert table.exit_code == 0, table.output
    assert "tickets filed from 2026-11-01 00:00 to 2026-11-08 00:00 UTC" in table.output
    assert "- Social tickets wait 2.0x longer for a first response than web tickets at p50" in table.output

    full = runner.invoke(app, ["report", "--config", config, "--csv", *PERIOD])
    rows = {(r["dimension"], r["group"]): r for r in csv.DictReader(io.StringIO(full.output))}
    assert rows[("channel", "email")]["tickets"] == "2" and rows[("all", "all")]["period_start"] == SINCE.isoformat()

    public = runner.invoke(app, ["report", "--config", config, "--csv", "--anonymous", *PERIOD])
    assert public.exit_code == 0, public.output
    rows = {(r["dimension"], r["group"]): r for r in csv.DictReader(io.StringIO(public.output))}
    assert rows[("channel", "email")]["tickets"] == "suppressed" and rows[("channel", "social")]["tickets"] == "11"
    assert HANDLE not in public.output and POST not in public.output

    # From a day after the last seeded ticket to now (no --until): nothing.
    recent = runner.invoke(app, ["report", "--config", config, "--since", "2026-11-09"])
    assert recent.exit_code == 0 and "Not enough data: no tickets were filed in this period." in recent.output


def test_a_wrong_period_or_a_missing_database_is_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'nothing.db'}")
    wrong = runner.invoke(app, ["report", "--config", config, "--since", "last week"])
    assert wrong.exit_code == 2 and "start: 'last week' is not a date" in wrong.output
    backwards = runner.invoke(app, ["report", "--config", config, "--since", "2026-11-08", "--until", "2026-11-01"])
    assert backwards.exit_code == 2 and "the period is empty" in backwards.output
    missing = runner.invoke(app, ["report", "--config", config])
    assert missing.exit_code == 1 and "no data here" in missing.output and not (tmp_path / "nothing.db").exists()
