"""The fake Zendesk's account: tickets, comments, users and idempotency keys, in Zendesk's wire shapes.

Behaviours the contract notes leave open (UNCERTAIN in the shared zendesk.md) are chosen here and named:
- an idempotency key is remembered only for a create that succeeded (a 4xx/5xx first try is not replayed);
- requests under one key are served one at a time, so an in-flight duplicate waits and then gets the replay;
- a replay answers with the first status (201) and body, plus ``x-idempotency-lookup: hit``;
- an unknown ``group_id``/``brand_id``/``ticket_form_id`` or ``requester_id`` is a 422 with ``details`` naming it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

IDEMPOTENCY_TTL = timedelta(hours=2)
PRIORITIES = ("urgent", "high", "normal", "low")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TYPES = ("problem", "incident", "question", "task")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FIRST_TICKET_ID = 4014
FIRST_RECORD_ID = 6130907993114  # user, comment and audit ids: 13 digits, as on a real account


class ApiError(Exception):
    """An answer other than success, with Zendesk's body for it."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def invalid(field_name: str, description: str, error: str = "InvalidValue") -> ApiError:
    return ApiError(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field_name: [{"description": description, "error": error}]},
        },
    )


def not_found() -> ApiError:
    return ApiError(404, {"error": "RecordNotFound", "description": "Not found"})


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class User:
    id: int
    name: str
    email: str
    role: str = "end-user"
    suspended: bool = False

    def wire(self, base: str, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": f"{base}/api/v2/users/{self.id}.json",
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "active": True,
            "verified": False,
            "suspended": self.suspended,
            "created_at": iso(now),
            "updated_at": iso(now),
        }


@dataclass
class Ticket:
    id: int
    fields: dict[str, Any]
    comments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Remembered:
    digest: str
    status: int
    body: dict[str, Any]
    at: datetime


class Account:
    """One Zendesk account. Thread-safe; the server calls it with parsed request bodies."""

    def __init__(self, *, agent_email: str, base_url: str, clock: Any) -> None:
        self._lock = threading.RLock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.clock = clock  # () -> aware datetime; tests move it past the idempotency window
        self.base_url = base_url
        self.tickets: dict[int, Ticket] = {}
        self.users: dict[int, User] = {}
        self._keys: dict[str, _Remembered] = {}
        self._next_ticket = FIRST_TICKET_ID
        self._next_record = FIRST_RECORD_ID
        self.groups, self.brands, self.forms = {360000000001}, {6130830354842}, {6130830344474}
        self.agent = self.add_user("fairdesk bot", agent_email, role="agent")

    def _record_id(self) -> int:
        self._next_record += 1
        return self._next_record

    def add_user(self, name: str, email: str, *, role: str = "end-user", suspended: bool = False) -> User:
        with self._lock:
            user = User(self._record_id(), name, email.lower(), role, suspended)
            self.users[user.id] = user
            return user

    def user_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email == email.lower()), None)

    # -- idempotency --

    def key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def replay(self, key: str, body: Any) -> tuple[int, dict[str, Any]] | None:
        """The first answer under ``key`` for the same body; a 400 for another body; None if the key is new."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            seen = self._keys.get(key)
            if seen is not None and self.clock() - seen.at > IDEMPOTENCY_TTL:
                del self._keys[key]
                seen = None
        if seen is None:
            return None
        if seen.digest != digest:
            raise ApiError(
                400,
                {
                    "error": "IdempotentRequestError",
                    "description": "Request parameters don't match the given idempotency key",
                },
                {"x-idempotency-lookup": "hit"},
            )
        return seen.status, seen.body

    def remember(self, key: str, body: Any, status: int, answer: dict[str, Any]) -> None:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            self._keys[key] = _Remembered(digest, status, answer, self.clock())

    # -- tickets --

    def _check(self, data: dict[str, Any]) -> None:
        for name, allowed in (("priority", PRIORITIES), ("status", STATUSES), ("type", TYPES)):
            if name in data and data[name] is not None and data[name] not in allowed:
                raise invalid(name, f"{name.title()}: {data[name]} is not valid")
        for name, known in (("group_id", self.groups), ("brand_id", self.brands), ("ticket_form_id", self.forms)):
            if name in data and data[name] not in known:
                raise invalid(name, f"{name.removesuffix('_id').replace('_', ' ').title()}: is invalid")
        if "tags" in data and not (isinstance(data["tags"], list) and all(isinstance(t, str) for t in data["tags"])):
            raise invalid("tags", "Tags: must be a list of strings")
        if "requester_id" in data:
            requester = self.users.get(data["requester_id"]) if isinstance(data["requester_id"], int) else None
            if requester is None:
                raise invalid("requester", "Requester: is invalid", "InvalidValue")
            if requester.suspended:
                raise invalid("requester", f"Requester: {requester.email} is suspended.", "UserSuspended")

    def _requester(self, spec: Any) -> User:
        if not isinstance(spec, dict) or not isinstance(spec.get("email"), str) or not EMAIL.match(spec["email"]):
            email = spec.get("email", "") if isinstance(spec, dict) else ""
            raise invalid("requester", f"Requester: Email:  {email} is not properly formatted")
        user = self.user_by_email(spec["email"]) or self.add_user(spec.get("name") or spec["email"], spec["email"])
        if user.suspended:
            raise invalid("requester", f"Requester: {user.email} is suspended.", "UserSuspended")
        return user

    def _comment(self, spec: Any, author: int, now: datetime, audit_id: int) -> dict[str, Any]:
        if not isinstance(spec, dict) or not (spec.get("body") or spec.get("html_body")):
            raise invalid("comment", "Comment: body can't be blank")
        body = str(spec.get("body") or re.sub(r"<[^>]+>", "", spec["html_body"]))
        paragraphs = "".join(f'<p dir="auto">{line}</p>' for line in body.split("\n") if line)
        return {
            "id": self._record_id(),
            "type": "Comment",
            "author_id": spec.get("author_id", author),
            "body": body,
            "html_body": f'<div class="zd-comment" dir="auto">{paragraphs}</div>',
            "plain_body": body,
            "public": bool(spec.get("public", True)),
            "attachments": [],
            "audit_id": audit_id,
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
            "metadata": {"system": {}, "custom": {}},
            "created_at": iso(now),
        }

    def _audit(self, ticket_id: int, audit_id: int, now: datetime, events: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": audit_id,
            "ticket_id": ticket_id,
            "created_at": iso(now),
            "author_id": self.agent.id,
            "metadata": {"system": {}, "custom": {}},
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
            "events": events,
        }

    def create(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("ticket"), dict):
            raise ApiError(400, {"error": "InvalidEndpoint", "description": "Parameter ticket is required"})
        spec = dict(data["ticket"])
        with self._lock:
            self._check(spec)
            if "comment" not in spec and "description" in spec:  # the live API takes this form too (REC)
                spec["comment"] = {"body": spec["description"]}
            requester = self._requester(spec["requester"]) if "requester" in spec else None
            requester_id = requester.id if requester else spec.get("requester_id", self.agent.id)
            now, audit_id = self.clock(), self._record_id()
            comment = self._comment(spec.get("comment"), self.agent.id, now, audit_id)
            ticket_id, self._next_ticket = self._next_ticket, self._next_ticket + 1
            fields = {
                "url": f"{self.base_url}/api/v2/tickets/{ticket_id}.json",
                "id": ticket_id,
                "external_id": spec.get("external_id"),
                "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                "created_at": iso(now),
                "updated_at": iso(now),
                "generated_timestamp": int(now.timestamp()),
                "type": spec.get("type"),
                "subject": spec.get("subject") or comment["body"][:50],
                "raw_subject": spec.get("subject") or comment["body"][:50],
                "description": comment["body"],
                "priority": spec.get("priority"),
                "status": spec.get("status") or "new",
                "recipient": None,
                "requester_id": requester_id,
                "submitter_id": self.agent.id,
                "assignee_id": None,
                "organization_id": 6130869157658,  # the agent's organization, as recorded
                "group_id": spec.get("group_id"),
                "collaborator_ids": [],
                "follower_ids": [],
                "email_cc_ids": [],
                "forum_topic_id": None,
                "problem_id": None,
                "has_incidents": False,
                "is_public": comment["public"],
                "due_at": None,
                "tags": sorted(set(spec.get("tags", []))),
                "custom_fields": spec.get("custom_fields", []),
                "satisfaction_rating": None,
                "sharing_agreement_ids": [],
                "custom_status_id": 6130830355738,
                "fields": spec.get("custom_fields", []),
                "followup_ids": [],
                "ticket_form_id": spec.get("ticket_form_id", 6130830344474),
                "brand_id": spec.get("brand_id", 6130830354842),
                "allow_channelback": False,
                "allow_attachments": True,
                "from_messaging_channel": False,
            }
            self.tickets[ticket_id] = Ticket(ticket_id, fields, [comment])
            events = [{**comment, "type": "Comment"}]
            events += [
                {"id": self._record_id(), "type": "Create", "value": fields[k], "field_name": k}
                for k in ("subject", "status", "priority")
                if fields[k] is not None
            ]
            return {"ticket": dict(fields), "audit": self._audit(ticket_id, audit_id, now, events)}

    def get(self, ticket_id: int) -> Ticket:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise not_found()
        return ticket

    def update(self, ticket_id: int, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("ticket"), dict):
            raise ApiError(400, {"error": "InvalidEndpoint", "description": "Parameter ticket is required"})
        spec = data["ticket"]
        with self._lock:
            ticket = self.get(ticket_id)
            if ticket.fields["status"] == "closed":
                raise invalid("status", "closed prevents ticket update")
            self._check(spec)
            now, audit_id = self.clock(), self._record_id()
            events: list[dict[str, Any]] = []
            if "comment" in spec:
                comment = self._comment(spec["comment"], self.agent.id, now, audit_id)
                ticket.comments.append(comment)
                events.append(comment)
            for key in ("status", "priority", "requester_id", "group_id", "tags", "subject", "type", "external_id"):
                if key in spec and spec[key] != ticket.fields[key]:
                    events.append({"id": self._record_id(), "type": "Change", "value": spec[key], "field_name": key,
                                   "previous_value": ticket.fields[key]})  # fmt: skip
                    ticket.fields[key] = spec[key]
            ticket.fields["updated_at"] = iso(now)
            ticket.fields["generated_timestamp"] = int(now.timestamp())
            return {"ticket": dict(ticket.fields), "audit": self._audit(ticket_id, audit_id, now, events)}

    def set_status(self, ticket_id: int, status: str) -> None:
        """What an agent does in Zendesk's own UI."""
        with self._lock:
            if status not in STATUSES:
                raise ValueError(status)
            ticket = self.get(ticket_id)
            ticket.fields["status"] = status
            ticket.fields["updated_at"] = iso(self.clock())

    def create_or_update_user(self, data: Any) -> tuple[int, dict[str, Any]]:
        spec = data.get("user") if isinstance(data, dict) else None
        if not isinstance(spec, dict):
            raise ApiError(400, {"error": "InvalidEndpoint", "description": "Parameter user is required"})
        email = spec.get("email")
        if not isinstance(email, str) or not EMAIL.match(email):
            raise invalid("email", f"Email: {email} is not properly formatted")
        with self._lock:
            user = self.user_by_email(email)
            if user is not None:
                if spec.get("name"):
                    user.name = str(spec["name"])
                return 200, {"user": user.wire(self.base_url, self.clock())}
            user = self.add_user(str(spec.get("name") or email), email)
            return 201, {"user": user.wire(self.base_url, self.clock())}


def page(items: list[dict[str, Any]], query: dict[str, str], key: str, url: str) -> dict[str, Any]:
    """Cursor pagination when page[size] is asked for, else the offset style (one page here)."""
    if "page[size]" not in query:
        return {key: items, "next_page": None, "previous_page": None, "count": len(items)}
    size = min(max(int(query["page[size]"]) if query["page[size]"].isdigit() else 100, 1), 100)
    start = int(base64.b64decode(query["page[after]"]).decode()) if query.get("page[after]") else 0
    chunk = items[start : start + size]
    has_more = start + size < len(items)
    after = base64.b64encode(str(start + size).encode()).decode() if has_more else None
    return {
        key: chunk,
        "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": None},
        "links": {"next": f"{url}?page[after]={after}&page[size]={size}" if after else None, "prev": None},
    }
