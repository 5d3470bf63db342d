"""A fake Zendesk Support API v2 (tickets, show_many, external_id listing, comments, users) for tests and local runs."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.serving import FakeHandler, ServedFake
from tests.fakes.zendesk_state import Account, ApiError, page

logger = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
DEFAULT_LIMIT = 700  # requests per minute (Enterprise)
SHOW_MANY_MAX = 100
_SUFFIX = r"(?:\.json)?"  # Zendesk serves every path with and without .json
_ROUTES = [
    ("POST", re.compile(rf"/api/v2/tickets{_SUFFIX}"), "create"),
    ("GET", re.compile(rf"/api/v2/tickets{_SUFFIX}"), "list"),
    ("GET", re.compile(rf"/api/v2/tickets/show_many{_SUFFIX}"), "show_many"),
    ("GET", re.compile(rf"/api/v2/tickets/(?P<id>\d+){_SUFFIX}"), "show"),
    ("PUT", re.compile(rf"/api/v2/tickets/(?P<id>\d+){_SUFFIX}"), "update"),
    ("GET", re.compile(rf"/api/v2/tickets/(?P<id>\d+)/comments{_SUFFIX}"), "comments"),
    ("POST", re.compile(rf"/api/v2/users/create_or_update{_SUFFIX}"), "users"),
    ("GET", re.compile(rf"/api/v2/users/me{_SUFFIX}"), "me"),  # the token's agent (fairdesk doctor)
]
ENDPOINTS = frozenset(name for _, _, name in _ROUTES)


@dataclass(frozen=True)
class Fault:
    """What the next request to an endpoint meets instead of a plain answer.

    ``error``: that status without doing anything; ``rate_limited``: a 429 with Retry-After; ``lost``: the work is
    done, then the connection drops (a timeout or a crash after the server acted); ``slow``: the work is done and
    answered after ``delay`` seconds; ``malformed``: the work is done and the answer is cut off mid-JSON."""

    kind: str
    status: int = 503
    retry_after: float | None = None
    delay: float = 0.0

    @classmethod
    def error(cls, status: int = 503, retry_after: float | None = None) -> Fault:
        return cls("error", status, retry_after)

    @classmethod
    def rate_limited(cls, retry_after: float = 7) -> Fault:
        return cls("error", 429, retry_after)

    @classmethod
    def lost(cls) -> Fault:
        return cls("lost")

    @classmethod
    def slow(cls, delay: float) -> Fault:
        return cls("slow", delay=delay)

    @classmethod
    def malformed(cls) -> Fault:
        return cls("malformed")


@dataclass
class RecordedRequest:
    method: str
    path: str
    endpoint: str | None
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    status: int = 0
    response: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None


class FakeZendesk(ServedFake):
    """A contract-faithful stand-in for Zendesk's Ticketing API v2 on 127.0.0.1, in a thread or in the foreground.

    Example::

        with FakeZendesk() as zd:
            settings = ZendeskHelpdesk(kind="zendesk", url=zd.url, email=zd.email, api_token=zd.token)
            ...
            zd.inject("create", Fault.rate_limited(7))
            assert zd.tickets()[0].fields["external_id"] == "FD-000001"
    """

    thread_name = "fake-zendesk"

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, email: str = "fairdesk@example.com", token: str = ""
    ) -> None:
        self.email = email
        self.token = token or "zd-" + base64.urlsafe_b64encode(b"fake zendesk api token!").decode().rstrip("=")
        self._lock = threading.RLock()
        self._offset = timedelta()
        self._log: list[RecordedRequest] = []
        self._faults: dict[str, deque[Fault]] = {}
        self.limit = DEFAULT_LIMIT
        self._window: tuple[int, int] = (0, 0)  # (minute, requests counted in it)
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._httpd.fake = self  # type: ignore[attr-defined]
        self.account = Account(agent_email=email, base_url=self.url, clock=self.now)

    # -- lifecycle and control --

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, **delta: float) -> None:
        """Move the server's clock on (e.g. ``hours=3``: past the idempotency window)."""
        self._offset += timedelta(**delta)

    def inject(self, endpoint: str, *faults: Fault) -> None:
        assert endpoint in ENDPOINTS, endpoint
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(faults)

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._log if endpoint is None or r.endpoint == endpoint]

    def tickets(self) -> list[Any]:
        with self._lock:
            return [self.account.tickets[i] for i in sorted(self.account.tickets)]

    def set_status(self, ticket_id: int | str, status: str) -> None:
        self.account.set_status(int(ticket_id), status)

    # -- the API --

    def _authenticate(self, headers: dict[str, str]) -> None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(value, validate=True).decode() if scheme.lower() == "basic" else ""
        except (ValueError, UnicodeDecodeError):
            given = ""
        if given != f"{self.email}/token:{self.token}":
            raise ApiError(401, {"error": "Couldn't authenticate you"})

    def _rate(self) -> dict[str, str]:
        moment = self.now().timestamp()
        minute = int(moment // 60)
        with self._lock:
            count = self._window[1] + 1 if self._window[0] == minute else 1
            self._window = (minute, count)
        reset = str(60 - int(moment % 60))
        remaining = max(self.limit - count, 0)
        headers = {
            "X-Rate-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(remaining),
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": reset,
        }
        if count > self.limit:
            raise ApiError(429, "Number of allowed API requests per minute exceeded", {**headers, "Retry-After": reset})
        return headers

    def _fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(endpoint)
            return queue.popleft() if queue else None

    def _dispatch(self, endpoint: str, ids: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
        account = self.account
        if endpoint == "me":
            return 200, {
                "user": {"id": 1, "name": "fairdesk bot", "email": self.email, "role": "agent", "active": True}
            }
        if endpoint == "create":
            return 201, account.create(body)
        if endpoint == "list":
            wanted = query.get("external_id")
            found = [t.fields for t in self.tickets() if wanted is None or t.fields["external_id"] == wanted]
            return 200, page(found, query, "tickets", f"{self.url}/api/v2/tickets.json")
        if endpoint == "show_many":
            raw = [i for i in query.get("ids", "").split(",") if i.strip()]
            if not raw or not all(i.strip().isdigit() for i in raw):
                raise ApiError(400, {"error": "InvalidValue", "description": "ids must be a comma-separated list"})
            if len(raw) > SHOW_MANY_MAX:
                raise ApiError(400, {"error": "TooManyValues", "description": "Maximum 100 ids may be requested"})
            wanted_ids = [int(i) for i in raw]
            return 200, {
                "tickets": [dict(account.tickets[i].fields) for i in wanted_ids if i in account.tickets],
                "next_page": None,
                "previous_page": None,
                "count": len([i for i in wanted_ids if i in account.tickets]),
            }
        if endpoint == "show":
            return 200, {"ticket": dict(account.get(int(ids["id"])).fields)}
        if endpoint == "update":
            return 200, account.update(int(ids["id"]), body)
        if endpoint == "comments":
            comments = account.get(int(ids["id"])).comments
            return 200, {"comments": comments, "next_page": None, "previous_page": None, "count": len(comments)}
        return account.create_or_update_user(body)

    def _serve(
        self, endpoint: str, ids: dict[str, str], query: dict[str, str], body: Any, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        key = headers.get("idempotency-key") if endpoint == "create" else None
        if key is None:
            return (*self._dispatch(endpoint, ids, query, body), {})
        with self.account.key_lock(key):  # an in-flight duplicate waits for the first and gets its answer
            replay = self.account.replay(key, body)
            if replay is not None:
                return (*replay, {"x-idempotency-lookup": "hit"})
            status, answer = self._dispatch(endpoint, ids, query, body)
            self.account.remember(key, body, status, answer)
            return status, answer, {"x-idempotency-lookup": "miss"}

    def handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if split.path.startswith("/_fake/"):
            status, payload = self._admin(handler.command, split.path, raw)
            handler.respond(status, json.dumps(payload, indent=1).encode(), JSON, {})
            return
        endpoint, ids = None, {}
        for method, pattern, name in _ROUTES:
            match = pattern.fullmatch(split.path)
            if match and method == handler.command:
                endpoint, ids = name, match.groupdict()
                break
        record = RecordedRequest(handler.command, split.path, endpoint, query, headers, raw)
        with self._lock:
            self._log.append(record)
        extra: dict[str, str] = {}

        def send(status: int, payload: Any, content_type: str = JSON) -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            if isinstance(payload, str):
                body, content_type = payload.encode(), TEXT
            record.status, record.response, record.response_headers = status, payload, extra
            handler.respond(status, body, content_type, extra)

        try:
            self._authenticate(headers)
            extra = self._rate()
            if endpoint is None:
                raise ApiError(404, {"error": "InvalidEndpoint", "description": "Not found"})
            fault = self._fault(endpoint)
            if fault is not None and fault.kind == "error":
                if fault.retry_after is not None:
                    extra = {**extra, "Retry-After": str(int(fault.retry_after))}
                message = "Number of allowed API requests per minute exceeded" if fault.status == 429 else None
                raise ApiError(fault.status, message or {"error": "ServiceUnavailable", "description": "Try later"})
            try:
                body = json.loads(raw) if raw else None
            except ValueError as exc:
                raise ApiError(400, {"error": "InvalidJSON", "description": "The request body is not JSON"}) from exc
            status, payload, more = self._serve(endpoint, ids, query, body, headers)
            extra = {**extra, **more}
            if status == 201 and endpoint == "create":
                extra["Location"] = payload["ticket"]["url"]
            if fault is not None and fault.kind == "lost":
                record.status, record.response = 0, payload  # done, but nobody hears it
                handler.close_connection = True
                return
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault is not None and fault.kind == "malformed":
                send(status, json.dumps(payload).encode()[:40])
                return
        except ApiError as err:
            extra = {**extra, **err.headers}
            send(err.status, err.body)
            return
        send(status, payload)

    def _admin(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        if method == "GET" and path == "/_fake/tickets":
            return 200, [
                {**{k: t.fields[k] for k in ("id", "subject", "status", "priority", "external_id", "tags")},
                 "requester": self.account.users[t.fields["requester_id"]].email,
                 "comments": [{"public": c["public"], "body": c["body"]} for c in t.comments]}
                for t in self.tickets()
            ]  # fmt: skip
        match = re.fullmatch(r"/_fake/tickets/(\d+)", path)
        if method == "PUT" and match:
            try:
                self.set_status(match.group(1), json.loads(raw)["status"])
            except (ValueError, KeyError, ApiError):
                return 400, {"error": 'send {"status": "solved"} for a ticket that exists'}
            return 200, {"ok": True}
        return 404, {"error": "GET /_fake/tickets or PUT /_fake/tickets/ID"}


class _Handler(FakeHandler):
    server_version = "fake-zendesk"

    def _run(self) -> None:
        try:
            super()._run()
        except Exception:
            # A bug in the fake must show as a 500 (a real server's answer), never as a hung client.
            logger.exception("fake-zendesk: error handling %s %s", self.command, self.path)
            self.respond(500, b'{"error":"InternalError"}', JSON, {})


# --- command line ----------------------------------------------------------------------------------------------


def config_hint(server: FakeZendesk, name: str = "zendesk") -> Iterator[str]:
    yield f"fake Zendesk listening on {server.url} (agent {server.email})"
    yield "config (TOML):"
    yield "  [sample.demo]   # the bundled sample feed, while no platform is configured"
    yield f"  [helpdesk.{name}]"
    yield '  kind = "zendesk"'
    yield f'  url = "{server.url}"'
    yield f'  email = "{server.email}"'
    yield "environment:"
    yield f"  export FAIRDESK_HELPDESK__{name.upper()}__API_TOKEN={server.token}"
    yield f"see the tickets: curl {server.url}/_fake/tickets"
    yield f"""solve one: curl -X PUT {server.url}/_fake/tickets/4014 -d '{{"status": "solved"}}'"""


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.zendesk_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8398)
    parser.add_argument("--email", default="fairdesk@example.com", help="the agent fairdesk files as")
    parser.add_argument("--token", default="", help="the API token to accept (default: a fixed fake one)")
    parser.add_argument("--rate-limit", type=int, default=DEFAULT_LIMIT, help="requests per minute")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    server = FakeZendesk(host=args.host, port=args.port, email=args.email, token=args.token)
    server.limit = args.rate_limit
    for line in config_hint(server):
        print(line, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
