"""What a newcomer meets in the first hour: `fairdesk tickets` without data, its headings, JSON log lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairdesk.cli import app
from fairdesk.logs import JsonFormatter

ROOT = Path(__file__).resolve().parent.parent


def test_tickets_in_a_folder_with_no_data_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["tickets"])
    assert result.exit_code == 1
    assert "no data here" in result.stderr and "fairdesk-data/fairdesk.db does not exist" in result.stderr
    assert not (tmp_path / "fairdesk-data").exists()


def test_tickets_has_column_headings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fairdesk.app import build
    from fairdesk.config.settings import Settings
    from tests.support import FakeAdapter, fake_classify, mention

    monkeypatch.chdir(tmp_path)
    adapter = FakeAdapter(mentions=[mention("1")])
    daemon = build(Settings(), adapters={("fake", "brand"): adapter}, classify=fake_classify)
    daemon.poll_all()
    daemon.close()
    result = CliRunner().invoke(app, ["tickets"])
    assert result.exit_code == 0, result.output
    header, first = result.stdout.splitlines()[:2]
    assert header.split() == ["REF", "PRI", "STATUS", "CHANNEL", "SUBJECT"]
    assert first.split()[0] == "FD-000001" and first.split()[2:4] == ["new", "social/fake"]
    assert first.index(" P") + 1 == header.index("PRI") and first.index("social") == header.index("CHANNEL")


def test_json_log_lines_carry_time_level_logger_message_and_exception() -> None:
    code = (
        "import logging\n"
        "from fairdesk.logs import configure_logging\n"
        "configure_logging('INFO', 'json')\n"
        "log = logging.getLogger('fairdesk.jobs.poll')\n"
        "log.info('x/%s poll: %d new (%s)', 'brand', 2, '1 skipped, 1 ticketed')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('job failed')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRDESK_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert len(lines) == 2  # one object per line, the traceback inside the second
    assert lines[0]["message"] == "x/brand poll: 2 new (1 skipped, 1 ticketed)"
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "fairdesk.jobs.poll"
    assert lines[0]["time"].endswith("+00:00") and "exception" not in lines[0]
    assert lines[1]["level"] == "ERROR" and "ZeroDivisionError" in lines[1]["exception"]


def test_run_takes_log_format_and_refuses_other_formats() -> None:
    assert "--log-format" in CliRunner().invoke(app, ["run", "--help"]).stdout
    refused = CliRunner().invoke(app, ["run", "--log-format", "xml"])
    assert refused.exit_code == 2


def test_json_formatter_keeps_non_ascii_text_readable() -> None:
    import logging

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "Überweisung %s", ("fehlt",), None)
    assert json.loads(JsonFormatter().format(record))["message"] == "Überweisung fehlt"
