"""Start-up faults as an operator meets them in `fairdesk run`: one line naming the problem and the fix, exit != 0."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from fairdesk.ticketing.db import DatabaseStartupError, connect, make_engine, migrate

CLOSED_PORT_URL = "postgresql+psycopg://postgres@127.0.0.1:1/fairdesk"
REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    # This checkout's code, whatever the virtualenv's editable install points at; none of the developer's settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRDESK_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _run(tmp_path: Path, config: str | bytes, *, timeout: float = 60) -> tuple[int, list[str], float]:
    """`python -m fairdesk run --config F` in tmp_path; returns exit code, the non-empty stderr lines, seconds taken."""
    path = tmp_path / "fairdesk.toml"
    if isinstance(config, str):
        config = config.encode("utf-8")
    path.write_bytes(config)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "fairdesk", "run", "--config", str(path)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc.returncode, lines, time.monotonic() - started


def _one_line(code: int, lines: list[str], *expected: str) -> str:
    assert code != 0
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for words in expected:
        assert words in lines[0], lines[0]
    return lines[0]


def _sample(tmp_path: Path, extra: str = "") -> str:
    return f'data_dir = "{tmp_path / "data"}"\n{extra}\n[web]\nport = 0\n[sample.demo]\n'


def test_unreachable_database_is_retried_with_a_countdown_then_one_line(tmp_path: Path) -> None:
    code, lines, took = _run(
        tmp_path, _sample(tmp_path, f'database_url = "{CLOSED_PORT_URL}"\ndatabase_wait_seconds = 2.5')
    )
    assert code != 0
    assert took >= 2.5
    *countdown, final = lines
    assert countdown and all("database not reachable (connection refused); retrying for" in c for c in countdown)
    assert "3 s more" in countdown[0]
    assert "Traceback" not in "\n".join(lines)
    assert final.startswith("fairdesk: database 127.0.0.1:1/fairdesk not reachable (connection refused)")
    assert "after waiting 2.5 s" in final and "start PostgreSQL" in final and "`database_url`" in final


def test_unreachable_database_with_no_wait_gives_up_at_once(tmp_path: Path) -> None:
    code, lines, took = _run(
        tmp_path, _sample(tmp_path, f'database_url = "{CLOSED_PORT_URL}"\ndatabase_wait_seconds = 0')
    )
    _one_line(code, lines, "not reachable (connection refused)", "start PostgreSQL there or fix `database_url`")
    assert took < 30


def test_corrupted_sqlite_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fairdesk.db").write_bytes(b"this is not SQLite\n" * 300)
    code, lines, _ = _run(tmp_path, _sample(tmp_path))
    _one_line(code, lines, "fairdesk.db", "file is not a database", "move it away")


def test_read_only_sqlite_file(tmp_path: Path) -> None:
    # The tests run as root, which ignores file modes; SQLite's read-only open is what a write-protected file gets.
    path = tmp_path / "ro.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    code, lines, _ = _run(tmp_path, _sample(tmp_path, f'database_url = "{url}"'))
    _one_line(code, lines, "readonly database", "writable")


def test_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    config = f'data_dir = "{tmp_path / "a-file" / "data"}"\n[web]\nport = 0\n[sample.demo]\n'
    code, lines, _ = _run(tmp_path, config)
    _one_line(code, lines, "`data_dir`", "Not a directory")


@pytest.mark.parametrize(
    ("feed", "problem"),
    [(None, "No such file or directory"), (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"), (b"{not json\n", "JSON")],
)
def test_missing_or_unreadable_sample_feed_names_the_key(tmp_path: Path, feed: bytes | None, problem: str) -> None:
    path = tmp_path / "feed.jsonl"
    if feed is not None:
        path.write_bytes(feed)
    config = _sample(tmp_path) + f'feed = "{path}"\n'
    code, lines, _ = _run(tmp_path, config)
    _one_line(code, lines, "config key `sample.demo.feed`", str(path), problem, "bundled feed")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", ("not UTF-8 text", "line 1", "save it as UTF-8")),
        (b'data_dir = "d"\n\n# caf\xe9\n', ("not UTF-8 text", "line 3")),
        (b"[web\nport = 1\n", ("not valid TOML", "line 1")),
        (b"port = 80\x00\n", ("not valid TOML", "line 1")),
    ],
)
def test_config_file_that_is_binary_or_not_toml(tmp_path: Path, content: bytes, expected: tuple[str, ...]) -> None:
    code, lines, _ = _run(tmp_path, content)
    _one_line(code, lines, "fairdesk.toml", *expected)


def test_config_file_that_is_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "conf.d"
    folder.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "fairdesk", "run", "--config", str(folder)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    _one_line(proc.returncode, lines, str(folder), "Is a directory")


class _StartingServer:
    """A real PostgreSQL engine whose first ``refusals`` connections go to a closed port, as while a server starts."""

    def __init__(self, url: str, refusals: int) -> None:
        self.engine = make_engine(url)
        self.closed = make_engine(CLOSED_PORT_URL)
        self.refusals = refusals
        self.dialect, self.url = self.engine.dialect, self.engine.url

    def connect(self) -> Connection:
        if self.refusals:
            self.refusals -= 1
            return self.closed.connect()
        return self.engine.connect()


@pytest.mark.postgres
def test_a_database_that_comes_up_during_the_wait_is_used(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    server = _StartingServer(pg_url, refusals=8)
    now = [0.0]
    caplog.set_level(logging.WARNING, logger="fairdesk.ticketing.db")
    conn = connect(server, wait_seconds=30, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))  # type: ignore[arg-type]
    try:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        conn.close()
        server.engine.dispose()
    assert now[0] == 8.0  # one attempt a second
    countdown = [r.getMessage() for r in caplog.records]
    assert countdown == [
        "database not reachable (connection refused); retrying for 30 s more",
        "database not reachable (connection refused); retrying for 25 s more",
    ]


def test_the_wait_ends_with_the_error_naming_the_fix() -> None:
    now = [0.0]
    engine = make_engine(CLOSED_PORT_URL)
    with pytest.raises(DatabaseStartupError, match="after waiting 3 s; start PostgreSQL there") as caught:
        connect(engine, wait_seconds=3, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert now[0] == 3.0 and caught.value.retry
