"""A fake Zammad REST API v1 (tickets, articles, search, users) for tests and local runs, with injectable faults."""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.serving import FakeHandler, ServedFake
from tests.fakes.zammad_store import STATES, User, ZammadError, ZammadStore, unprocessable

logger = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"
HTML = "text/html"
DEFAULT_TOKEN = "fake-zammad-token-0123456789abcdef"
_ROUTES = [  # (method, path pattern, endpoint name)
    ("POST", re.compile(r"/api/v1/tickets"), "ticket_create"),
    ("GET", re.compile(r"/api/v1/tickets/search"), "ticket_search"),
    ("POST", re.compile(r"/api/v1/tickets/search"), "ticket_search"),
    ("GET", re.compile(r"/api/v1/tickets/(?P<id>[^/]+)"), "ticket_show"),
    ("PUT", re.compile(r"/api/v1/tickets/(?P<id>[^/]+)"), "ticket_update"),
    ("POST", re.compile(r"/api/v1/ticket_articles"), "article_create"),
    ("GET", re.compile(r"/api/v1/ticket_articles/by_ticket/(?P<id>[^/]+)"), "articles_by_ticket"),
    ("POST", re.compile(r"/api/v1/users"), "user_create"),
    ("GET", re.compile(r"/api/v1/users/me"), "users_me"),  # the token's own user (fairdesk doctor)
]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, used by the next matching request."""

    kind: str  # "error" | "rate_limited" | "slow" | "malformed" | "disconnect"
    status: int = 503
    delay: float = 0.0
    process: bool = True  # "slow"/"malformed": still carry it out (a ticket may exist though the client gave up)
    retry_after: int | None = None  # "rate_limited": the proxy's Retry-After header, if it sends one

    @classmethod
    def error(cls, status: int = 503) -> Fault:
        return cls("error", status=status)

    @classmethod
    def rate_limited(cls, retry_after: int | None = 1) -> Fault:
        return cls("rate_limited", status=429, retry_after=retry_after)

    @classmethod
    def slow(cls, delay: float, *, process: bool = True) -> Fault:
        return cls("slow", delay=delay, process=process)

    @classmethod
    def malformed(cls, *, process: bool = True) -> Fault:
        return cls("malformed", status=200, process=process)

    @classmethod
    def disconnect(cls) -> Fault:
        return cls("disconnect", status=0)


@dataclass
class RecordedRequest:
    """What the server was sent; ``status`` is filled in when it answers (0: connection dropped)."""

    method: str
    path: str
    endpoint: str | None
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    body: Any
    status: int | None = None
    response: Any = None


class FakeZammadServer(ServedFake):
    """Zammad's API as the contract notes describe it, on 127.0.0.1 in a thread. ``store`` holds its data;
    ``inject`` queues faults per endpoint (or "*"); ``requests`` is every request received, bytes included."""

    thread_name = "fake-zammad"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        search_lag: float = 0.0,
        elasticsearch: bool = True,
    ) -> None:
        self.store = ZammadStore(search_lag=search_lag, elasticsearch=elasticsearch)
        self.tokens: dict[str, int] = {token: 3}  # token -> user id; 3 is the agent "fairdesk-bot"
        self.token = token
        self._lock = threading.RLock()
        self._faults: dict[str, deque[Fault]] = {}
        self._log: list[RecordedRequest] = []
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]

    # -- for tests --

    def inject(self, endpoint: str, *faults: Fault) -> None:
        """Queue faults for the next requests to an endpoint (see _ROUTES for names) or "*" for any."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(faults)

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._log if endpoint is None or r.endpoint == endpoint]

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket as ``GET /tickets/{id}?expand=true`` shows it, oldest first."""
        with self._lock:
            ordered = sorted(self.store.tickets.values(), key=lambda t: t.id)
            return [self.store.wire_ticket(t, expand=True) for t in ordered]

    def articles(self, ticket_id: int | str) -> list[dict[str, Any]]:
        with self._lock:
            ticket = self.store.ticket(ticket_id)
            return [self.store.wire_article(self.store.articles[a]) for a in ticket.article_ids]

    def set_state(self, ticket_id: int | str, state: str) -> None:
        """An agent changes the ticket's state in Zammad's UI."""
        with self._lock:
            self.store.update_ticket(self.store.ticket(ticket_id), {"state": state}, self.store.users[3])

    def _next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for key in (endpoint, "*"):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    # -- request handling (called from handler threads) --

    def _authenticate(self, headers: dict[str, str]) -> User:
        header = headers.get("authorization", "")
        if not header:
            raise ZammadError(403, "Authentication required")
        match = re.fullmatch(r"Token token=(\S+)", header)
        user_id = self.tokens.get(match.group(1)) if match else None
        if user_id is None:
            raise ZammadError(401, "Can't find User for Token", {"X-Failure": "Can't find User for Token"})
        return self.store.users[user_id]

    def _dispatch(
        self, endpoint: str, params: dict[str, str], query: dict[str, str], body: Any, caller: User
    ) -> tuple[int, Any]:
        s = self.store
        expand = query.get("expand") == "true" or (isinstance(body, dict) and body.get("expand") in (True, "true"))
        writes = ("ticket_create", "ticket_update", "article_create", "user_create")
        if endpoint in writes and not isinstance(body, dict):
            raise unprocessable("Need a JSON object")
        if endpoint == "users_me":
            return 200, caller.wire()
        if endpoint == "ticket_create":
            return 201, s.wire_ticket(s.create_ticket(body, caller), expand=expand)
        if endpoint == "ticket_show":
            return 200, s.wire_ticket(s.ticket(params["id"]), expand=expand)
        if endpoint == "ticket_update":
            return 200, s.wire_ticket(s.update_ticket(s.ticket(params["id"]), body, caller), expand=expand)
        if endpoint == "ticket_search":
            return 200, self._search(query, body if isinstance(body, dict) else {}, expand)
        if endpoint == "article_create":
            if "ticket_id" not in body:
                raise unprocessable("Need ticket_id")  # UNCERTAIN wording
            s._check_article(body)
            return 201, s.wire_article(s.add_article(s.ticket(body["ticket_id"]), body, caller))
        if endpoint == "articles_by_ticket":
            ticket = s.ticket(params["id"])
            return 200, [s.wire_article(s.articles[a]) for a in ticket.article_ids]
        # user_create: agents may create customers
        if not caller.agent:
            raise ZammadError(403, "Not authorized")
        email = str(body.get("email") or "")
        if email and s.user_by(email) is not None:
            raise unprocessable(f"Email address '{email}' is already used for other user.")
        return 201, s.add_customer(email).wire()

    def _search(self, query: dict[str, str], body: dict[str, Any], expand: bool) -> Any:
        q = body.get("query", query.get("query"))
        condition = body.get("condition")
        limit = int(body.get("limit") or body.get("per_page") or query.get("limit") or query.get("per_page") or 50)
        page = int(body.get("page") or query.get("page") or 1)
        limit = max(1, min(limit, 200))
        hits = self.store.search(q, condition if isinstance(condition, dict) else None)
        if str(body.get("order_by", query.get("order_by", "asc"))).lower() == "desc":
            hits = hits[::-1]
        hits = hits[(page - 1) * limit : page * limit]
        if expand:
            return [self.store.wire_ticket(t, expand=True) for t in hits]
        return {
            "tickets": [t.id for t in hits],
            "tickets_count": len(hits),
            "assets": {"Ticket": {str(t.id): self.store.wire_ticket(t) for t in hits}},
        }

    def _admin(self, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        """Unauthenticated helpers for manual runs: list tickets, change a state, inject faults, reindex."""
        data = json.loads(raw or b"{}")
        with self._lock:
            if method == "GET" and path == "/_fake/tickets":
                return 200, self.tickets()
            match = re.fullmatch(r"/_fake/tickets/(\d+)", path)
            if method == "PUT" and match:
                self.set_state(match.group(1), data["state"])
                return 200, self.store.wire_ticket(self.store.ticket(match.group(1)), expand=True)
            if method == "GET" and path == "/_fake/requests":
                return 200, [
                    {"method": r.method, "path": r.path, "body": r.body, "status": r.status}
                    for r in self.requests(query.get("endpoint"))
                ]
            if method == "POST" and path == "/_fake/reindex":
                self.store.reindex()
                return 200, {"ok": True}
            if method == "POST" and path == "/_fake/faults":
                kind, endpoint = data.pop("kind"), data.pop("endpoint", "*")
                self.inject(endpoint, getattr(Fault, kind)(**data))
                return 201, {"queued": kind, "endpoint": endpoint}
        return 404, {"error": "no such admin route"}

    def handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if path.startswith("/_fake/"):
            status, payload = self._admin(handler.command, path, query, raw)
            handler.respond(status, json.dumps(payload).encode(), JSON, {})
            return
        endpoint, params = None, {}
        for method, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match and method == handler.command:
                endpoint, params = name, match.groupdict()
                break
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = RecordedRequest(handler.command, path, endpoint, query, headers, raw, body)
        with self._lock:
            self._log.append(record)

        def send(status: int, payload: Any, extra: dict[str, str] | None = None, content_type: str = JSON) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            record.status, record.response = status, payload
            handler.respond(status, data, content_type, extra or {})

        try:
            if endpoint is None:
                raise ZammadError(404, f'No route matches [{handler.command}] "{path}"')
            caller = self._authenticate(headers)
            fault = self._next_fault(endpoint)
            if fault is not None and fault.kind == "rate_limited":
                # Zammad itself sends no rate-limit headers (notes §8); a proxy in front may, with a plain body.
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                send(429, b"<html><body><h1>429 Too Many Requests</h1></body></html>", extra, HTML)
                return
            if fault is not None and fault.kind == "error":
                if fault.status in (502, 503, 504):  # a proxy's page, not Zammad's JSON
                    send(fault.status, f"<html><body><h1>{fault.status}</h1></body></html>".encode(), None, HTML)
                    return
                raise ZammadError(fault.status, f"Error ID fault{fault.status}: Please contact your administrator.")
            if fault is not None and fault.kind == "disconnect":
                record.status = 0
                handler.close_connection = True
                return
            if fault is not None and not fault.process:
                time.sleep(fault.delay)
                if fault.kind == "malformed":
                    send(200, b'{"id":')
                else:
                    record.status = 0
                    handler.close_connection = True
                return
            with self._lock:
                status, payload = self._dispatch(endpoint, params, query, body, caller)
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)  # done, but the answer comes too late for an impatient client
            if fault is not None and fault.kind == "malformed":
                send(status, json.dumps(payload).encode()[:25])  # carried out, answer cut short
                return
        except ZammadError as err:
            send(err.status, {"error": err.message, "error_human": err.message}, err.headers)
            return
        send(status, payload)


class _Handler(FakeHandler):
    server_version = "fake-zammad"


# --- command line ----------------------------------------------------------------------------------------------


def _config_hint(server: FakeZammadServer) -> Iterator[str]:
    yield f"fake Zammad API listening on {server.url} (group Users, agent fairdesk-bot)"
    yield "config (TOML):"
    yield "  [helpdesk.zammad]"
    yield '  kind = "zammad"'
    yield f'  url = "{server.url}"'
    yield '  group = "Users"'
    yield '  customer = "social@example.com"'
    yield "  sync_seconds = 5"
    yield "environment:"
    yield f"  export FAIRDESK_HELPDESK__ZAMMAD__TOKEN={server.token}"
    yield f"see the tickets: curl {server.url}/_fake/tickets"
    yield f"""close one: curl -X PUT {server.url}/_fake/tickets/1 -d '{{"state": "closed"}}'"""
    fault = '{"kind": "error", "endpoint": "ticket_create"}'
    yield f"a 503 on the next create: curl -X POST {server.url}/_fake/faults -d '{fault}'"


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.zammad_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8397)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the agent's access token")
    parser.add_argument("--search-lag", type=float, default=2.0, help="seconds until Elasticsearch sees a change")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    server = FakeZammadServer(host=args.host, port=args.port, token=args.token, search_lag=args.search_lag)
    for line in _config_hint(server):
        print(line, flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()


__all__ = ["STATES", "DEFAULT_TOKEN", "FakeZammadServer", "Fault", "RecordedRequest", "main"]
