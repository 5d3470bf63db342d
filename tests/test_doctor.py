"""`fairdesk doctor`: one line per check, against the fake X, Zendesk and Zammad, a real webhook receiver and SMTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from fairdesk.cli import app
from tests.fakes.x_server import FakeXServer
from tests.fakes.zammad_server import FakeZammadServer
from tests.fakes.zendesk_server import FakeZendesk
from tests.peers.webhook import WebhookReceiver
from tests.support import free_port


class _Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's naming)
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[_Sink, int]]:
    """A real SMTP server (aiosmtpd) on a free loopback port that keeps every message it is sent."""
    sink, port = _Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def healthz() -> Iterator[str]:
    """A stand-in for the daemon behind the public URL: answers GET /healthz like fairdesk does."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def peers(
    x_server: FakeXServer, webhook_receiver: WebhookReceiver, smtp_sink: tuple[_Sink, int], healthz: str
) -> Iterator[dict[str, Any]]:
    with FakeZendesk() as zendesk, FakeZammadServer() as zammad:
        yield {"x": x_server, "zendesk": zendesk, "zammad": zammad, "hook": webhook_receiver, "smtp": smtp_sink,
               "public": healthz}  # fmt: skip


def _config(
    tmp_path: Path, p: dict[str, Any], monkeypatch: pytest.MonkeyPatch, *, home: str, public: str | None = None
) -> Path:
    """A config with every kind of check: X, the home helpdesk (one only), a webhook, SMTP and the public URL."""
    x, zendesk, zammad, hook = p["x"], p["zendesk"], p["zammad"], p["hook"]
    homes = {
        "zd": f'[helpdesk.zd]\nkind = "zendesk"\nurl = "{zendesk.url}"\nemail = "{zendesk.email}"',
        "zammad": f'[helpdesk.zammad]\nkind = "zammad"\nurl = "{zammad.url}"\ngroup = "Users"\n'
        'customer = "social@example.com"',
    }
    _, smtp_port = p["smtp"]
    config = tmp_path / "fairdesk.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
public_url = "{public or p["public"]}"

[mail]
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_security = "none"
from_address = "support@example.com"

[x.brand]
handle = "{x.brand.username}"
user_id = "{x.brand.id}"
api_base_url = "{x.url}"

{homes[home]}

[helpdesk.hooks]
kind = "webhook"
url = "{hook.url}"
""",
        encoding="utf-8",
    )
    for key, value in x.account_secrets().items():
        monkeypatch.setenv(f"FAIRDESK_X__BRAND__{key.upper()}", value)
    if home == "zd":
        monkeypatch.setenv("FAIRDESK_HELPDESK__ZD__API_TOKEN", zendesk.token)
    else:
        monkeypatch.setenv("FAIRDESK_HELPDESK__ZAMMAD__TOKEN", zammad.token)
    monkeypatch.setenv("FAIRDESK_HELPDESK__HOOKS__SECRET", hook.secret)
    return config


def _lines(output: str) -> dict[str, str]:
    out = {}
    for line in output.splitlines():
        mark, _, rest = line.partition(" ")
        name = rest.strip()[:24].strip()
        out[name] = mark
    return out


HOMES = {"zd": "helpdesk zd (zendesk)", "zammad": "helpdesk zammad (zammad)"}


@pytest.mark.parametrize("home", sorted(HOMES))
def test_every_check_passes_against_answering_peers_and_nothing_is_filed_or_sent(
    tmp_path: Path, peers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, home: str
) -> None:
    config = _config(tmp_path, peers, monkeypatch, home=home)
    result = CliRunner().invoke(app, ["doctor", "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert lines == {
        "config": "ok",
        "database": "ok",
        "x/brand": "ok",
        HOMES[home]: "ok",
        "helpdesk hooks (webhook)": "ok",
        "public URL": "ok",
        "SMTP ([mail])": "ok",
    }, result.stdout
    assert "@acme_support" in result.stdout  # the X check names whose keys they are
    assert peers["hook"].deliveries == [] and peers["hook"].attempts == []  # HEAD: no event, no signature
    assert peers["smtp"][0].messages == []
    assert peers["zendesk"].tickets() == [] and peers["zammad"].tickets() == []
    assert not (tmp_path / "data" / "fairdesk.db").exists()  # doctor reads; it creates no database


@pytest.mark.parametrize("home", sorted(HOMES))
def test_each_refusal_is_one_failing_line_and_a_non_zero_exit(
    tmp_path: Path, peers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, home: str
) -> None:
    config = _config(tmp_path, peers, monkeypatch, home=home, public=f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("FAIRDESK_X__BRAND__BEARER_TOKEN", "not-the-token")
    monkeypatch.setenv("FAIRDESK_X__BRAND__ACCESS_TOKEN_SECRET", "not-the-secret")
    wrong = {"zd": "FAIRDESK_HELPDESK__ZD__API_TOKEN", "zammad": "FAIRDESK_HELPDESK__ZAMMAD__TOKEN"}[home]
    monkeypatch.setenv(wrong, "wrong-helpdesk-token")
    text = config.read_text(encoding="utf-8")
    text = text.replace(peers["hook"].url, f"http://127.0.0.1:{free_port()}/hooks")
    text = text.replace(f"smtp_port = {peers['smtp'][1]}", f"smtp_port = {free_port()}")
    config.write_text(text, encoding="utf-8")

    result = CliRunner().invoke(app, ["doctor", "--config", str(config)])
    assert result.exit_code == 1
    lines = _lines(result.stdout)
    assert lines["config"] == "ok" and lines["database"] == "ok"
    failing = {name for name, mark in lines.items() if mark == "FAIL"}
    assert failing == {
        "x/brand",
        HOMES[home],
        "helpdesk hooks (webhook)",
        "public URL",
        "SMTP ([mail])",
    }, result.stdout
    assert "5 check(s) failed" in result.stderr


def test_a_config_that_cannot_be_used_is_the_one_failing_line(tmp_path: Path) -> None:
    config = tmp_path / "fairdesk.toml"
    config.write_text('[x.brand]\nhandle = "acme"\nbearer_tokn = "x"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["doctor", "--config", str(config)])
    assert result.exit_code == 1
    assert result.stdout.startswith("FAIL  config")
    assert "x.brand.bearer_tokn" in result.stdout and len(result.stdout.splitlines()) == 1


def test_the_sample_feed_and_a_migrated_database_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fairdesk.ticketing.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'fairdesk.db'}")
    migrate(engine)
    engine.dispose()
    config = tmp_path / "fairdesk.toml"
    public = f"http://127.0.0.1:{free_port()}"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\npublic_url = "{public}"\n[sample.demo]\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["doctor", "--config", str(config)])
    lines = _lines(result.stdout)
    assert lines["database"] == "ok" and "newest migration" in result.stdout
    assert lines["sample/demo"] == "ok" and "60 posts" in result.stdout
    assert lines["public URL"] == "FAIL"  # nothing runs on the default public URL's port in this test
    assert lines["SMTP ([mail])"] == "-"
