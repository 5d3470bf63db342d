"""What every fake server shares: an HTTP handler that hands each request to the fake, serving on a loopback port in
a thread, and stopping cleanly."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

logger = logging.getLogger(__name__)


class ServedFake:
    """A fake whose ``_httpd`` serves in a background thread between ``start()`` and ``stop()`` (or a ``with``).

    Example: ``with FakeZendesk() as zendesk: client = httpx.Client(base_url=zendesk.url)``
    """

    _httpd: ThreadingHTTPServer
    _thread: threading.Thread | None = None
    thread_name = "fake-server"

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the command-line entry points)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeHandler(BaseHTTPRequestHandler):
    """Hands every request to ``server.fake.handle(self)``; the fake answers with ``respond``."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real services serve; clients reuse the connection
    server_version = "fake"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out as separate writes: without this, ~40 ms per answer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._run()

    def do_POST(self) -> None:  # noqa: N802
        self._run()

    def do_PUT(self) -> None:  # noqa: N802
        self._run()

    def _run(self) -> None:
        try:
            self.server.fake.handle(self)  # type: ignore[attr-defined]
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test)

    def respond(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s: " + format, self.server_version, *args)
