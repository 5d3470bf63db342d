"""`scripts/demo --reset`: says what it removes, removes ./fairdesk-data, then runs the demo afresh.

The script runs from a copy of the repository's scripts folder whose env.sh is a fake: its `fairdesk_venv` puts a
stand-in `fairdesk` first on PATH that records its arguments and whether the data folder still existed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FAKE_ENV = """\
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fairdesk_venv() {
  mkdir -p "$ROOT/bin"
  cat >"$ROOT/bin/fairdesk" <<'EOF'
#!/usr/bin/env bash
{ echo "args: $*"; if [ -e fairdesk-data ]; then echo "data: kept"; else echo "data: gone"; fi; } >ran.txt
EOF
  chmod +x "$ROOT/bin/fairdesk"
  export PATH="$ROOT/bin:$PATH"
}
"""


def _checkout(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "demo", tmp_path / "scripts" / "demo")
    (tmp_path / "scripts" / "env.sh").write_text(FAKE_ENV, encoding="utf-8")
    data = tmp_path / "fairdesk-data"
    (data / "sample").mkdir(parents=True)
    (data / "fairdesk.db").write_bytes(b"tickets")
    (data / "sample" / "replies-demo.jsonl").write_text("{}\n", encoding="utf-8")
    return tmp_path


def _demo(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "scripts" / "demo"), *args], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )


def test_reset_says_what_it_removes_removes_it_and_runs_the_demo_afresh(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    done = _demo(root, "--reset", "--log-format", "json")
    assert done.returncode == 0, done.stderr
    assert (root / "ran.txt").read_text(encoding="utf-8").splitlines() == ["args: run --log-format json", "data: gone"]
    said = done.stderr
    assert f"removes {root / 'fairdesk-data'}" in said and "tickets" in said and "agent" in said
    assert "fairdesk-data/fairdesk.db" in said and "fairdesk-data/sample/replies-demo.jsonl" in said
    assert not (root / "fairdesk-data").exists()


def test_without_reset_the_data_stays_and_a_second_reset_has_nothing_to_remove(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    kept = _demo(root)
    assert kept.returncode == 0, kept.stderr
    assert (root / "ran.txt").read_text(encoding="utf-8").splitlines() == ["args: run", "data: kept"]
    assert (root / "fairdesk-data" / "fairdesk.db").read_bytes() == b"tickets" and "removes" not in kept.stderr
    assert _demo(root, "--reset").returncode == 0
    again = _demo(root, "--reset")
    assert again.returncode == 0 and "nothing to remove" in again.stderr
