"""The distributions: built from this checkout, installed into a fresh virtualenv outside it, and run from there.

This proves that the model, the templates, the static files and the migrations ship inside the package, that
everything installs under the one name `fairdesk` (no top-level `config`, `nlp`, `listener`... in site-packages),
and that the declared dependencies are enough to run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("config", "listener", "nlp", "ticketing", "helpdesk")


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A wheel and an sdist built by `python -m build` from this checkout (into a folder outside it)."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)], cwd=out, env=_env())
    wheel = next(out.glob("fairdesk-*.whl"))
    sdist = next(out.glob("fairdesk-*.tar.gz"))
    return wheel, sdist


def _env() -> dict[str, str]:
    """The environment without this checkout on the path and without the test's own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAIRDESK_", "PYTHON", "VIRTUAL_ENV"))}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def test_the_wheel_holds_only_the_fairdesk_package_with_its_data(dists: tuple[Path, Path]) -> None:
    wheel, _ = dists
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"fairdesk", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    for expected in (
        "fairdesk/nlp/model/meta.json",
        "fairdesk/ticketing/web/templates/queue.html",
        "fairdesk/ticketing/web/static/style.css",
        "fairdesk/ticketing/migrations/env.py",
        "fairdesk/listener/data/sample_feed.jsonl",
    ):
        assert expected in names, expected
    assert any(n.startswith("fairdesk/ticketing/migrations/versions/0001") for n in names)


def test_the_sdist_carries_the_sources_and_the_model(dists: tuple[Path, Path]) -> None:
    _, sdist = dists
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "fairdesk/cli.py", "fairdesk/nlp/model/meta.json"} <= names
    assert not {n for n in names if n.split("/")[0] in LAYERS}, "a layer outside the fairdesk package"


def test_the_installed_wheel_classifies_shows_config_and_runs_outside_the_checkout(
    dists: tuple[Path, Path], tmp_path: Path
) -> None:
    wheel, _ = dists
    venv = tmp_path / "venv"
    env = _env()
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env)
    py, fairdesk = str(venv / "bin" / "python"), str(venv / "bin" / "fairdesk")
    _run([py, "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path, env=env, timeout=900)

    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path, env=env))
    site = Path(str(site).strip())
    assert not [layer for layer in LAYERS if (site / layer).exists()], "a top-level module besides fairdesk"
    located = _run([py, "-c", "import fairdesk.nlp; print(fairdesk.nlp.__file__)"], cwd=tmp_path, env=env)
    assert Path(located.strip()).is_relative_to(site), "imported from the checkout, not the installed wheel"

    classified = _run([fairdesk, "classify", "my parcel never arrived and nobody answers"], cwd=tmp_path, env=env)
    assert json.loads(classified.splitlines()[0])["label"] == "complaint"

    shown = _run([fairdesk, "config"], cwd=tmp_path, env=env)
    assert "data_dir" in shown

    port = free_port()
    config = tmp_path / "fairdesk.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\npublic_url = "http://127.0.0.1:{port}"\n'
        f"[web]\nport = {port}\n[reply]\ninterval_seconds = 0.5\n[sample.demo]\npoll_seconds = 0.5\nper_poll = 30\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [fairdesk, "run", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health: dict[str, Any] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
                if health.get("replies", {}).get("sent"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        page = httpx.get(f"http://127.0.0.1:{port}/sample", timeout=5)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert health.get("replies", {}).get("sent"), (health, output)
    assert page.status_code == 200 and "/static/style.css" in page.text
    assert "Traceback" not in output
    listed = _run([fairdesk, "tickets", "--config", str(config)], cwd=tmp_path, env=env)
    assert "FD-000001" in listed
