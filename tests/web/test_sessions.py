"""Agents' server-side sessions and two-factor logins, driven as an admin does: `fairdesk agent ...` and HTTP."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pyotp
from typer.testing import CliRunner

from fairdesk.cli import app
from tests.web.conftest import AGENT, OTHER_AGENT, OTHER_PASSWORD, PASSWORD, Site, csrf_of


def _admin(site: Site, tmp_path: Path, *args: str) -> str:
    config = tmp_path / "admin.toml"
    url = site.daemon.engine.url.render_as_string(hide_password=False)
    config.write_text(f'data_dir = "{tmp_path / "admin"}"\ndatabase_url = "{url}"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["agent", *args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result.output


def test_sessions_are_listed_and_revoked_from_the_command_line(site: Site, tmp_path: Path) -> None:
    with site.client() as desk, site.client() as laptop:
        site.login(desk)
        site.login(laptop)
        listed = _admin(site, tmp_path, "sessions", AGENT)
        assert listed.count("from 127.0.0.1") == 2
        assert "2 session(s) of alex ended" in _admin(site, tmp_path, "sessions", AGENT, "--revoke")
        assert desk.get("/agent").url.path == "/agent/login"
        assert laptop.get("/agent").url.path == "/agent/login"
    assert "has no sessions" in _admin(site, tmp_path, "sessions", AGENT)


def test_locking_or_removing_an_agent_ends_its_sessions(site: Site, tmp_path: Path) -> None:
    with site.client() as kim:
        site.login(kim, OTHER_AGENT, OTHER_PASSWORD)
        assert "1 session(s) ended" in _admin(site, tmp_path, "lock", OTHER_AGENT)
        assert kim.get("/agent").url.path == "/agent/login"
        assert site.login(kim, OTHER_AGENT, OTHER_PASSWORD).status_code == 401
        _admin(site, tmp_path, "unlock", OTHER_AGENT)
        assert site.login(kim, OTHER_AGENT, OTHER_PASSWORD).url.path == "/agent"
        _admin(site, tmp_path, "remove", OTHER_AGENT)
        assert kim.get("/agent").url.path == "/agent/login"


def test_a_session_left_idle_ends(site: Site) -> None:
    site.daemon.web_app.state.ctx.session_idle = timedelta(seconds=1)
    with site.client() as desk:
        site.login(desk)
        assert desk.get("/agent").url.path == "/agent"
        time.sleep(1.5)
        assert desk.get("/agent").url.path == "/agent/login"


def test_an_agent_the_admin_requires_it_of_needs_a_totp_code(site: Site, tmp_path: Path) -> None:
    with site.client() as desk:
        site.login(desk)
        shown = _admin(site, tmp_path, "totp", AGENT)
        secret = re.search(r"secret \(shown once\): ([A-Z2-7]+)", shown).group(1)  # type: ignore[union-attr]
        assert "otpauth://totp/fairdesk:alex" in shown
        assert desk.get("/agent").url.path == "/agent/login"  # requiring a code ended the sessions
        assert site.login(desk).status_code == 401  # the password alone is not enough
        csrf = csrf_of(desk.get("/agent/login").text)
        wrong = desk.post("/agent/login", data={"csrf": csrf, "name": AGENT, "password": PASSWORD, "code": "000000"})
        assert wrong.status_code == 401
        code = pyotp.TOTP(secret).now()
        ok = desk.post("/agent/login", data={"csrf": csrf, "name": AGENT, "password": PASSWORD, "code": code})
        assert ok.url.path == "/agent"
    _admin(site, tmp_path, "totp", AGENT, "--off")
    with site.client() as other:
        assert site.login(other).url.path == "/agent"
