"""The crash-and-fault soak (bench/soak.py): its reckoning, and its quick mode run for real as CI does."""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.soak_daemons import client_pid
from bench.soak_observe import owner_pid
from bench.soak_report import Figures, Platform, duplicates, percentile, restart_gaps, table

REPO = Path(__file__).resolve().parents[1]
QUICK_TIMEOUT = 330  # seconds; the quick run takes ~2 min on 2 cores, most of it posting at a steady pace


def _figures(**changes: object) -> Figures:
    x = Platform("x", offered={"1", "2", "3"}, served={"1", "2", "3"}, replies=["1", "3"], ledger={"1", "2", "3"})
    values: dict[str, object] = {
        "platforms": [x],
        "tickets": 2,
        "duplicate_tickets": 0,
        "outbox": {"sent": 2},
        "sent_not_on_platform": 0,
        "gaps": {"x": [1.5, 4.0]},
        "own_gaps": [3.0, math.inf],
        "bound": 13.0,
        "latencies": [1.0, 2.0],
        "max_rss_kb": 200_000,
        "kills": Counter({"random moment": 2}),
        "exits": [],
        "faults": {"5xx": 1},
        "drained": True,
        "wall": 10.0,
    }
    values.update(changes)
    return Figures(**values)  # type: ignore[arg-type]


def test_a_clean_run_has_no_failures() -> None:
    figures = _figures()
    assert figures.failures() == []
    assert "1 of 2 were killed or stopped before their first poll" in table(figures, {})


def test_a_loopback_connection_is_traced_to_its_process() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as client:
        accepted, _ = server.accept()
        with accepted:
            port, server_port = client.getsockname()[1], server.getsockname()[1]
            assert client_pid(port, server_port, {os.getpid()}) == os.getpid()
            assert client_pid(port, server_port, set()) is None
            assert client_pid(port + 1 if port < 65535 else port - 1, server_port, {os.getpid()}) is None


def test_a_served_mention_without_a_ledger_entry_is_lost() -> None:
    x = Platform("x", offered={"1", "2"}, served={"1", "2"}, replies=[], ledger={"1"})
    figures = _figures(platforms=[x])
    assert figures.lost == 1
    assert figures.failures() == ["1 served mention(s) have no ledger entry"]
    assert "lost on x: ['2']" in table(figures, {})


def test_two_replies_to_one_post_are_one_duplicate() -> None:
    x = Platform("x", offered={"1"}, served={"1"}, replies=["1", "1", "2"], ledger={"1"})
    assert _figures(platforms=[x]).duplicate_replies == 1
    assert duplicates(["a", "a", "a", "b"]) == 2


def test_a_gap_over_the_bound_and_a_stall_fail() -> None:
    x = Platform("x", offered={"1", "2"}, served={"1"}, replies=[], ledger={"1"})
    failures = _figures(platforms=[x], gaps={"x": [2.0, 300.0]}, outbox={"sending": 1}).failures()
    assert failures == [
        "an account went 300.0 s unpolled after a restart (bound 13 s)",
        "1 posted mention(s) never fetched by the end of the drain (stalled)",
        "1 reply(ies) still pending, sending or uncertain after the drain (stalled)",
    ]


def test_restart_gaps_run_to_the_next_poll_or_to_the_end() -> None:
    polls = [1.0, 2.0, 9.0]
    assert restart_gaps([1.5, 3.0, 10.0], polls, end=40.0) == [0.5, 6.0, 30.0]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 95) == 95.0


def test_owner_pid_reads_both_owner_forms() -> None:
    assert owner_pid("host/4026531836/4242/ab12cd") == 4242
    assert owner_pid("host:4242:ab12cd") == 4242
    assert owner_pid("(rate limited)") is None
    assert owner_pid(None) is None


def _figure(output: str, label: str) -> str:
    match = re.search(rf"^\s+{re.escape(label)}\s{{2,}}(.+)$", output, re.MULTILINE)
    assert match, f"no '{label}' line in:\n{output}"
    return match.group(1)


@pytest.mark.slow
@pytest.mark.postgres
def test_quick_soak_loses_nothing_duplicates_nothing_and_polls_again_after_each_kill() -> None:
    # Both daemons start at the same moment on the fresh database, as after a deploy.
    command = [sys.executable, "bench/soak.py", "--quick", "--daemons", "2", "--db", "postgres", "--start-together"]
    command += ["--seed", "7"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=QUICK_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the soak stops its daemons and drops its database on SIGTERM
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"the quick soak took over {QUICK_TIMEOUT} s:\n{output}")

    assert process.returncode == 0, output
    assert _figure(output, "lost") == "0"
    assert _figure(output, "duplicate tickets") == "0"
    assert _figure(output, "duplicate replies") == "0"
    assert _figure(output, "never served (stalled)") == "0"
    assert int(_figure(output, "mentions served").replace(",", "")) >= 1000
    kills = int(_figure(output, "kills").split()[0])
    assert kills >= 3, output
    assert len(re.findall(r"SIGKILL daemon \d \(pid \d+\)", output)) == kills
    gap = re.match(r"([\d.]+) s \(bound (\d+) s", _figure(output, "longest polling gap after a restart"))
    assert gap and float(gap.group(1)) <= float(gap.group(2))
    sent = re.findall(r"([\d,]+) (x|sample)", _figure(output, "replies sent"))
    assert {platform for count, platform in sent if int(count.replace(",", "")) > 0} == {"x", "sample"}
    assert output.rstrip().endswith("soak: OK")
