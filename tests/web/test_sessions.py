"""Agents' server-side sessions and two-factor logins, driven as an admin does: `fairdesk agent ...` and HTTP."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
from sqlmodel import select
from typer.testing import CliRunner

from fairdesk.cli import app
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.logins import FORGET_ALL
from fairdesk.ticketing.models import LoginFailure
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


def test_a_two_factor_code_logs_in_once(site: Site, tmp_path: Path) -> None:
    """RFC 6238 5.2: a code seen over a shoulder or in a log must not open a second session; the next one does."""
    shown = _admin(site, tmp_path, "totp", AGENT)
    totp = pyotp.TOTP(re.search(r"secret \(shown once\): ([A-Z2-7]+)", shown).group(1))  # type: ignore[union-attr]
    code, following = totp.now(), totp.at(time.time() + 30)

    def log_in(client: Any, code: str) -> Any:
        csrf = csrf_of(client.get("/agent/login").text)
        return client.post("/agent/login", data={"csrf": csrf, "name": AGENT, "password": PASSWORD, "code": code})

    with site.client() as desk, site.client() as thief, site.client() as later:
        assert log_in(desk, code).url.path == "/agent"
        replayed = log_in(thief, code)
        assert replayed.status_code == 401 and thief.get("/agent").url.path == "/agent/login"
        assert log_in(later, following).url.path == "/agent"  # the next step's code (clocks drift: it is accepted)
        assert log_in(desk, code).status_code == 401  # an older code than the last one used, even from its device


def test_failed_logins_nobody_remembers_are_deleted(site: Site) -> None:
    now = time.time()
    with transaction(site.daemon.sessions) as session:
        session.add(LoginFailure(key="c:old", failures=9, last_failed=now - FORGET_ALL - 60))
        session.add(LoginFailure(key="c:recent", failures=2, last_failed=now - 600))
    with site.client() as desk:
        assert site.login(desk, AGENT, "wrong password").status_code == 401
    with transaction(site.daemon.sessions) as session:
        keys = set(session.exec(select(LoginFailure.key)))
    assert "c:old" not in keys and "c:recent" in keys and len(keys) == 3  # plus the new account and client rows


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
