"""Real `fairdesk run` processes filing into a real RT, SIGKILLed at several moments: one RT ticket per complaint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import select

from fairdesk.ticketing.db import make_engine, session_factory, transaction
from fairdesk.ticketing.models import DeliveryState, HelpdeskDelivery, Ticket
from tests.peers.rt import RtPeer

pytestmark = [pytest.mark.rt, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
KILL_AT = (2, 9, 17)  # RT tickets seen in the queue when the running daemon is killed: early, middle, late


def _start(config: Path, token: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FAIRDESK_HELPDESK__RT__TOKEN": token, "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fairdesk", "run", "--config", str(config)], env=env, stdout=out, stderr=out
        )


def _wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_during_delivery_at_several_moments_leaves_one_rt_ticket_per_complaint(
    tmp_path: Path, rt_peer: RtPeer
) -> None:
    queue = rt_peer.new_queue()
    config = tmp_path / "fairdesk.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nlog_level = "INFO"\n[web]\nport = 0\n'
        f"[sample.demo]\npoll_seconds = 0.5\nper_poll = 6\n"
        f'[helpdesk.rt]\nkind = "rt"\nurl = "{rt_peer.url}"\nqueue = "{queue}"\nretry_seconds = 1\n',
        encoding="utf-8",
    )
    log = tmp_path / "daemon.log"
    killed = 0
    for target in KILL_AT:
        daemon = _start(config, rt_peer.token, log)
        try:
            _wait(lambda t=target: len(rt_peer.tickets(queue)) >= t, 90, f"{target} RT tickets")
        finally:
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(10)
            killed += 1
    final = _start(config, rt_peer.token, log)
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'fairdesk.db'}")
    sessions = session_factory(engine)

    def all_filed() -> bool:
        with transaction(sessions) as session:
            rows = session.exec(select(HelpdeskDelivery)).all()
            tickets = session.exec(select(Ticket)).all()
        return len(tickets) >= 30 and len(rows) == len(tickets) and all(r.state == DeliveryState.FILED for r in rows)

    try:
        _wait(all_filed, 120, "every ticket filed")
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(30) == 0, log.read_text()[-3000:]
    with transaction(sessions) as session:
        refs = sorted(t.ref for t in session.exec(select(Ticket)))
    engine.dispose()
    in_rt = [re.match(r"\[(FD-\d{6})\]", t["Subject"]).group(1) for t in rt_peer.tickets(queue)]  # type: ignore[union-attr]
    assert killed == len(KILL_AT)
    assert sorted(in_rt) == refs, "an RT ticket is missing or was filed twice"
