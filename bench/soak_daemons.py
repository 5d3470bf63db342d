"""The soak's daemons: real `fairdesk run` processes on a fresh database, started, SIGKILLed and restarted."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

logger = logging.getLogger(__name__)

READY_LINE = "fairdesk: web pages on"
START_TIMEOUT = 120.0  # seconds for one daemon to load its classifier and listen, on a busy 2-core machine
STOP_TIMEOUT = 20.0
# The daemon dies with the harness (SIGKILL on the parent's death), even if the harness itself is SIGKILLed.
# prctl(PR_SET_PDEATHSIG) survives exec, so the launcher sets it and becomes `python -m fairdesk run`.
LAUNCHER = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGKILL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'fairdesk', 'run', '--config', sys.argv[1]])"
)


class Database:
    """A fresh PostgreSQL database (dropped on close) or a SQLite file in the data folder."""

    def __init__(self, kind: str, data_dir: Path, admin_url: str) -> None:
        self.kind = kind
        self._admin_url = admin_url
        self._name: str | None = None
        if kind == "sqlite":
            self.url = f"sqlite:///{data_dir / 'fairdesk.db'}"
            return
        self._name = f"fairdesk_soak_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self._name}"'))
        finally:
            admin.dispose()
        base, _, _ = admin_url.rpartition("/")
        self.url = f"{base}/{self._name}"

    def drop(self) -> None:
        if self._name is None:
            return
        admin = create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'))
        finally:
            admin.dispose()
        self._name = None


def write_config(
    path: Path,
    *,
    data_dir: Path,
    database_url: str | None,
    x_url: str,
    x_handle: str,
    x_user_id: str,
    feed: Path,
    sample_per_poll: int,
    poll_seconds: float,
) -> None:
    lines = [
        f'data_dir = "{data_dir}"',
        'public_url = "https://help.soak.example"',
        'log_level = "INFO"',
    ]
    if database_url:
        lines.append(f'database_url = "{database_url}"')
    lines += [
        "[web]",
        'host = "127.0.0.1"',
        "port = 0",
        "[reply]",
        "interval_seconds = 1.0",
        "backoff_seconds = 1.0",  # retries 1, 2, 4, 8 s: a fault costs seconds, not the default minutes
        "[x.brand]",
        f'handle = "{x_handle}"',
        f'user_id = "{x_user_id}"',
        f'api_base_url = "{x_url}"',
        f"poll_seconds = {poll_seconds}",
        "[sample.soak]",
        f'feed = "{feed}"',
        f"poll_seconds = {poll_seconds}",
        f"per_poll = {sample_per_poll}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def daemon_env(x_secrets: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRDESK_")}
    env.update({f"FAIRDESK_X__BRAND__{key.upper()}": value for key, value in x_secrets.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def client_pid(port: int, server_port: int, pids: set[int]) -> int | None:
    """Which of ``pids`` owns the loopback TCP connection from ``port`` to ``server_port`` (Linux /proc)."""
    wanted = (f"0100007F:{port:04X}", f"0100007F:{server_port:04X}")
    inode = None
    try:
        with open("/proc/net/tcp", encoding="ascii") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 9 and (fields[1], fields[2]) == wanted:
                    inode = fields[9]
                    break
    except OSError:
        return None
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


@dataclass
class Slot:
    """One daemon position; each restart is a new process (a new generation) in the same slot."""

    number: int
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    generation: int = 0
    started_at: float = 0.0
    _ready: bool = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def ready(self) -> bool:
        if not self._ready and self.log is not None and self.log.exists():
            self._ready = READY_LINE in self.log.read_text(encoding="utf-8", errors="replace")
        return self._ready

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Fleet:
    """The daemon processes. Only the thread that made it may start them (the death signal follows that thread)."""

    config: Path
    logs: Path
    env: dict[str, str]
    source: Path  # the checkout the daemons run from (`python -m fairdesk` imports from its working directory)
    slots: list[Slot] = field(default_factory=list)
    restarts: list[tuple[float, int]] = field(default_factory=list)  # (time.time(), new pid) of each restart
    exits: list[str] = field(default_factory=list)  # daemons that stopped without being killed
    max_rss_kb: int = 0

    def start(self, slot: Slot) -> None:
        slot.generation += 1
        slot._ready = False
        slot.log = self.logs / f"daemon-{slot.number}-{slot.generation}.log"
        with slot.log.open("wb") as out:
            slot.process = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.source,
            )
        slot.started_at = time.time()

    def start_all(self, count: int, *, together: bool = False) -> None:
        """Start ``count`` daemons: one after another, each once the previous listens, or all at once (``together``:
        several daemons migrating a fresh database at the same moment, as after a deploy)."""
        for number in range(1, count + 1):
            slot = Slot(number)
            self.slots.append(slot)
            self.start(slot)
            if not together:
                self.wait_ready(slot)
        for slot in self.slots:
            self.wait_ready(slot)

    def wait_ready(self, slot: Slot) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not slot.ready():
            if slot.process is None or slot.process.poll() is not None:
                raise RuntimeError(f"daemon {slot.number} exited while starting; see {slot.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon {slot.number} not listening after {START_TIMEOUT:.0f} s; see {slot.log}")
            time.sleep(0.1)

    def by_pid(self, pid: int) -> Slot | None:
        return next((s for s in self.slots if s.pid == pid and s.alive()), None)

    def kill_and_restart(self, slot: Slot) -> float:
        """SIGKILL the slot's daemon and start its successor at once; return the restart time."""
        assert slot.process is not None
        slot.process.send_signal(signal.SIGKILL)
        slot.process.wait(10)
        self.start(slot)
        self.restarts.append((slot.started_at, slot.process.pid))
        return slot.started_at

    def check(self) -> None:
        """Note (and replace) any daemon that died on its own: that is a failure the soak reports."""
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is not None:
                self.exits.append(f"daemon {slot.number} exited with {slot.process.returncode}; see {slot.log}")
                logger.warning("%s", self.exits[-1])
                self.start(slot)
                self.restarts.append((slot.started_at, slot.process.pid))

    def live_pids(self) -> set[int]:
        return {s.process.pid for s in self.slots if s.process is not None and s.alive()}

    def sample_rss(self) -> None:
        for slot in self.slots:
            if slot.pid is not None and (kb := rss_kb(slot.pid)):
                self.max_rss_kb = max(self.max_rss_kb, kb)

    def stop(self) -> None:
        """SIGTERM (a clean stop: running jobs finish), then SIGKILL whatever is left."""
        live = [s.process for s in self.slots if s.process is not None and s.process.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in live:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
