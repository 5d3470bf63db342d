"""contrib/: the systemd unit (parsed always; `systemd-analyze verify` where present) and the Containerfile."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib" / "fairdesk.service"
CONTAINERFILE = ROOT / "Containerfile"


def _unit() -> dict[str, dict[str, list[str]]]:
    """The unit as systemd reads it: sections of keys, each key's values in order (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_unit_runs_fairdesk_as_its_own_user_with_state_secrets_restart_and_hardening() -> None:
    service = _unit()["Service"]
    assert service["User"] == ["fairdesk"] and service["Group"] == ["fairdesk"]
    assert service["StateDirectory"] == ["fairdesk"]
    assert service["Restart"] == ["on-failure"]
    assert service["EnvironmentFile"] == ["/etc/fairdesk/secrets.env"]
    (start,) = service["ExecStart"]
    assert start.split()[1:3] == ["run", "--config"] and "--log-format json" in start
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == [value], key
    assert _unit()["Install"]["WantedBy"] == ["multi-user.target"]
    # No secret is written in the unit itself: every FAIRDESK_ variable it sets is a path.
    for env in service.get("Environment", []):
        assert env.split("=", 1)[1].startswith("/"), env


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists: point the unit at this virtualenv's fairdesk.
    fairdesk = Path(sys.executable).parent / "fairdesk"
    unit = tmp_path / "fairdesk.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/fairdesk/bin/fairdesk", str(fairdesk)))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in done.stderr.splitlines() if "fairdesk.service" in line]
    assert done.returncode == 0 and not problems, done.stderr


def test_the_containerfile_installs_from_the_repo_runs_unprivileged_and_keeps_data_in_a_volume() -> None:
    lines = [line.strip() for line in CONTAINERFILE.read_text(encoding="utf-8").splitlines()]
    instructions = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    words = {name.upper() for name, *_ in instructions}
    assert {"FROM", "COPY", "RUN", "USER", "EXPOSE", "VOLUME", "ENTRYPOINT"} <= words
    text = "\n".join(lines)
    assert "pip install" in text and "COPY . " in text
    (user,) = [rest for name, *rest in instructions if name.upper() == "USER"]
    assert user[0] not in ("root", "0")
    assert [rest for name, *rest in instructions if name.upper() == "EXPOSE"] == [["8000"]]
    assert [rest for name, *rest in instructions if name.upper() == "VOLUME"] == [["/data"]]
    assert "FAIRDESK_DATA_DIR=/data" in text and "FAIRDESK_WEB__HOST=0.0.0.0" in text


def test_scripts_fairdesk_runs_commands_in_the_demos_virtualenv_and_folder(tmp_path: Path) -> None:
    cache = Path.home() / ".cache" / "fairdesk"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "FAIRDESK_CACHE": str(cache)}
    done = subprocess.run(
        [str(ROOT / "scripts" / "fairdesk"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "doctor" in done.stdout and "backfill" in done.stdout
    assert "scripts/fairdesk tickets" in (ROOT / "scripts" / "demo").read_text(encoding="utf-8")
