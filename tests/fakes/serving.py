"""What every fake server shares: serving on a loopback port in a thread, and stopping cleanly."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Self


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
