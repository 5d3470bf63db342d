"""The command line as an operator uses it: tickets, agent add, and the daemon started and stopped for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from fairdesk.cli import app
from tests.support import free_port

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, port: int = 0) -> Path:
    path = tmp_path / "fairdesk.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\npublic_url = "http://127.0.0.1:{port or 8000}"\n'
        f"[web]\nport = {port}\n[reply]\ninterval_seconds = 0.5\n"
        "[sample.demo]\npoll_seconds = 0.5\nper_poll = 30\n",
        encoding="utf-8",
    )
    return path


def test_agent_add_and_tickets(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    added = runner.invoke(
        app, ["agent", "add", "robin", "--config", str(config), "--password-stdin"], input="a-long-enough-password\n"
    )
    assert added.exit_code == 0, added.output
    again = runner.invoke(
        app, ["agent", "add", "robin", "--config", str(config), "--password-stdin"], input="a-long-enough-password\n"
    )
    assert again.exit_code == 1 and "already exists" in again.output
    short = runner.invoke(app, ["agent", "add", "kim", "--config", str(config), "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 10" in short.output
    listed = runner.invoke(app, ["tickets", "--config", str(config)])
    assert listed.exit_code == 0 and "no tickets" in listed.output
    changed = runner.invoke(
        app, ["agent", "passwd", "robin", "--config", str(config), "--password-stdin"], input="another-long-password\n"
    )
    assert changed.exit_code == 0 and "password changed" in changed.output
    missing = runner.invoke(
        app, ["agent", "passwd", "nobody", "--config", str(config), "--password-stdin"], input="another-long-password\n"
    )
    assert missing.exit_code == 1 and "no agent 'nobody'" in missing.output

    from fairdesk.ticketing.agents import authenticate
    from fairdesk.ticketing.db import make_engine, session_factory, transaction

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'fairdesk.db'}")
    with transaction(session_factory(engine)) as session:
        assert authenticate(session=session, name="robin", password="another-long-password") is not None
        assert authenticate(session=session, name="robin", password="a-long-enough-password") is None
    engine.dispose()


def test_fairdesk_run_files_tickets_serves_pages_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRDESK_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # this checkout, whatever the venv links to
    proc = subprocess.Popen(
        [sys.executable, "-m", "fairdesk", "run", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
                if health["replies"].get("sent"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert health is not None and health["replies"].get("sent"), health
        assert health["accounts"][0]["mentions_seen"] > 0
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "created agent 'admin' with password: " in output
    assert f"web pages on http://127.0.0.1:{port}" in output
    assert "Traceback" not in output
    listed = CliRunner().invoke(app, ["tickets", "--config", str(config)])
    assert listed.exit_code == 0 and "FD-000001" in listed.output


def test_classify_prints_json_lines_with_label_and_score() -> None:
    result = CliRunner().invoke(
        app, ["classify"], input="my parcel never arrived and nobody answers\nthanks, love it\n"
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert len(rows) == 2
    assert rows[0]["label"] == "complaint" and rows[1]["label"] == "not_complaint"
    assert all(0.0 <= r["score"] <= 1.0 and "severity" in r for r in rows)


def test_config_masks_every_secret_including_passwords_inside_urls(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with config.open("a", encoding="utf-8") as f:
        f.write('[helpdesk.rt]\nkind = "rt"\nurl = "https://fd:rt-url-pass-77@rt.example.com"\nqueue = "General"\n')
    env = {
        "FAIRDESK_DATABASE_URL": "postgresql+psycopg://fairdesk:db-pass-hunter22@db.example:5432/fairdesk",
        "FAIRDESK_HELPDESK__RT__TOKEN": "1-14-rt-token-secret",
        "FAIRDESK_WEB__SECRET_KEY": "web-signing-key-secret",
    }
    shown = CliRunner().invoke(app, ["config", "--config", str(config)], env=env)
    assert shown.exit_code == 0, shown.output
    for secret in ("db-pass-hunter22", "rt-url-pass-77", "rt-token-secret", "web-signing-key-secret"):
        assert secret not in shown.output
    dumped = json.loads(shown.output)
    assert dumped["database_url"] == "postgresql+psycopg://fairdesk:***@db.example:5432/fairdesk"
    assert dumped["helpdesk"]["rt"]["url"] == "https://fd:***@rt.example.com"
