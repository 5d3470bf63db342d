"""A real local webhook receiver: verifies Standard Webhooks signatures, drops repeats by webhook-id, records all."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    webhook_id: str
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    """What a team's endpoint would do: refuse a bad signature (401), answer repeats 200 without acting again.

    ``fail_next`` makes the next N requests answer that status (e.g. [503, 503]) before verifying anything."""

    secret: str
    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)  # accepted, one per webhook-id
    attempts: list[tuple[str, int]] = field(default_factory=list)  # (webhook-id, status answered), every request
    fail_next: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, raw: bytes, headers: dict[str, str]) -> int:
        msg_id = headers.get("webhook-id", "")
        with self.lock:
            if self.fail_next:
                status = self.fail_next.pop(0)
                self.attempts.append((msg_id, status))
                return status
            try:
                body = Webhook(self.secret).verify(raw, headers)
            except WebhookVerificationError:
                self.attempts.append((msg_id, 401))
                return 401
            if all(d.webhook_id != msg_id for d in self.deliveries):
                self.deliveries.append(Delivery(msg_id, headers, raw, body))
            self.attempts.append((msg_id, 200))
            return 200

    def of_type(self, kind: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.body["type"] == kind]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A receiver on a free loopback port with a fresh secret.

    Example: ``WebhookHelpdesk(url=webhook_receiver.url, secret=webhook_receiver.secret)``
    """
    receiver = WebhookReceiver(secret=new_secret())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = receiver.handle(raw, {k.lower(): v for k, v in self.headers.items()})
            payload = json.dumps({"ok": status == 200}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/fairdesk"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
