"""The data behind the fake Zammad: users, groups, tickets, articles, tags and the two search paths (SQL and a lagging
Elasticsearch), with Zammad's validation and wire shapes (facts and sources: the project's Zammad contract notes)."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATES = {1: "new", 2: "open", 3: "pending reminder", 4: "closed", 5: "merged", 6: "removed", 7: "pending close"}
PRIORITIES = {1: "1 low", 2: "2 normal", 3: "3 high"}
ARTICLE_TYPES = {
    1: "email", 2: "sms", 3: "chat", 4: "fax", 5: "phone", 6: "twitter status", 7: "twitter direct-message",
    8: "facebook feed post", 9: "facebook feed comment", 10: "note", 11: "web", 12: "telegram personal-message",
}  # fmt: skip
SENDERS = {1: "Agent", 2: "Customer", 3: "System"}
# Null keys of the real ticket object (notes §2), so the wire shape is the real one, not a convenient subset.
NULL_TICKET_KEYS = (
    "note", "first_response_at", "first_response_escalation_at", "first_response_in_min", "first_response_diff_in_min",
    "close_at", "close_escalation_at", "close_in_min", "close_diff_in_min", "update_escalation_at", "update_in_min",
    "update_diff_in_min", "last_close_at", "last_contact_at", "last_contact_agent_at", "last_contact_customer_at",
    "last_owner_update_at", "escalation_at", "pending_time", "type", "time_unit",
)  # fmt: skip
EMAIL = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$")


class ZammadError(Exception):
    """An answer Zammad gives as ``{"error", "error_human"}`` with a status (notes §7)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def unprocessable(message: str) -> ZammadError:
    return ZammadError(422, message)


def masked_error() -> ZammadError:
    # An unexpected exception, as a non-admin caller sees it (notes §7).
    return ZammadError(500, f"Error ID {secrets.token_hex(3)}: Please contact your administrator.")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class User:
    id: int
    login: str
    email: str
    firstname: str = ""
    lastname: str = ""
    agent: bool = False

    def wire(self) -> dict[str, Any]:
        now = iso(datetime.now(UTC))
        return {
            "id": self.id, "login": self.login, "email": self.email, "firstname": self.firstname,
            "lastname": self.lastname, "active": True, "organization_id": None, "role_ids": [2 if self.agent else 3],
            "created_at": now, "updated_at": now,
        }  # fmt: skip


@dataclass
class Ticket:
    id: int
    title: str
    group_id: int
    customer_id: int
    state_id: int = 1
    priority_id: int = 2
    owner_id: int = 1
    created_by_id: int = 3
    attributes: dict[str, Any] = field(default_factory=dict)  # custom attributes (Object Manager)
    article_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    indexed_at: float = 0.0  # when the background job makes this version visible to Elasticsearch


@dataclass
class Article:
    id: int
    ticket_id: int
    body: str
    subject: str | None
    type_id: int
    sender_id: int
    internal: bool
    content_type: str
    created_by_id: int
    origin_by_id: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class ZammadStore:
    """Everything the fake holds; callers serialise access with their own lock."""

    def __init__(self, *, search_lag: float = 0.0, elasticsearch: bool = True) -> None:
        self.groups: dict[int, str] = {1: "Users"}
        self.no_access_groups: set[str] = set()  # groups the agent may not create in (403 Not authorized)
        self.users: dict[int, User] = {
            1: User(1, "-", ""),
            2: User(2, "nicole.braun@zammad.org", "nicole.braun@zammad.org", "Nicole", "Braun"),
            3: User(3, "fairdesk-bot", "fairdesk-bot@example.com", "fairdesk", "bot", agent=True),
        }
        self.attributes: set[str] = set()  # custom ticket attributes; others are dropped as Zammad's cleanup does
        self.tickets: dict[int, Ticket] = {}
        self.articles: dict[int, Article] = {}
        self.search_lag = search_lag  # seconds until a change is in the Elasticsearch index (inf: never, until reindex)
        self.elasticsearch = elasticsearch  # without it, a query search runs in SQL (immediate, ILIKE)

    # -- lookups by name or id (notes §2: names exactly, users by login then email) --

    def _lookup(self, params: dict[str, Any], key: str, table: dict[int, str]) -> int | None:
        if params.get(f"{key}_id") is not None:
            value = params[f"{key}_id"]
            if not isinstance(value, int) or value not in table:
                raise unprocessable(f"Invalid value for param '{key}_id': {value}")
            return value
        if key in params:
            name = params[key]
            for ident, known in table.items():
                if known == name:
                    return ident
            raise unprocessable(f"No lookup value found for '{key}': \"{name}\"")
        return None

    def user_by(self, ref: str) -> User | None:
        ref = ref.lower()
        return next((u for u in self.users.values() if u.login.lower() == ref), None) or next(
            (u for u in self.users.values() if u.email.lower() == ref and u.email), None
        )

    def add_customer(self, email: str) -> User:
        user = User(max(self.users) + 1, email.lower(), email.lower())
        self.users[user.id] = user
        return user

    def _customer(self, params: dict[str, Any]) -> int | None:
        value = params.get("customer_id")
        if isinstance(value, str) and value.startswith("guess:"):
            email = value.removeprefix("guess:")
            if not EMAIL.match(email):
                raise unprocessable(f"Invalid email '{email}' of customer")
            return (self.user_by(email) or self.add_customer(email)).id
        if value is not None:
            if not isinstance(value, int) or value not in self.users:
                raise unprocessable(f"Invalid value for param 'customer_id': {value}")
            return value
        if "customer" in params:
            name = params["customer"]
            user = self.user_by(str(name)) if isinstance(name, str) else None
            if user is None:
                raise unprocessable(f"No lookup value found for 'customer': \"{name}\"")
            return user.id
        return None

    # -- tickets --

    def create_ticket(self, params: dict[str, Any], caller: User) -> Ticket:
        if not str(params.get("title") or "").strip():
            raise unprocessable("Title can't be blank")
        group_id = self._lookup(params, "group", self.groups)
        if group_id is None:
            raise unprocessable("Group can't be blank")
        if self.groups[group_id] in self.no_access_groups:
            raise ZammadError(403, "Not authorized")
        customer_id = self._customer(params) if caller.agent else caller.id
        if customer_id is None:
            raise unprocessable("Customer can't be blank")  # UNCERTAIN wording; the client always sends one
        owner_id = params.get("owner_id", 1)
        owner = self.users.get(owner_id) if isinstance(owner_id, int) else None
        if owner is None or (owner.id != 1 and not owner.agent):
            raise unprocessable(f"Invalid value for param 'owner_id': {owner_id}")
        state_id = self._lookup(params, "state", STATES) or 1
        priority_id = self._lookup(params, "priority", PRIORITIES) or 2
        tags = params.get("tags")
        if tags is not None and not isinstance(tags, str):
            raise masked_error()  # the controller calls .split(',') on it (notes §2)
        article = params.get("article")
        if article is not None:
            self._check_article(article)
        ticket = Ticket(
            id=max(self.tickets, default=0) + 1,
            title=str(params["title"]),
            group_id=group_id,
            customer_id=customer_id,
            state_id=state_id,
            priority_id=priority_id,
            owner_id=owner_id,
            created_by_id=caller.id,
            attributes={k: params[k] for k in self.attributes if k in params},
            tags=[t.strip() for t in (tags or "").split(",") if t.strip()],
        )
        self.tickets[ticket.id] = ticket
        if article is not None:
            self.add_article(ticket, article, caller)
        self._touch(ticket)
        return ticket

    def ticket(self, ticket_id: int | str) -> Ticket:
        ticket = self.tickets.get(int(ticket_id)) if str(ticket_id).isdigit() else None
        if ticket is None:
            raise ZammadError(404, f"Couldn't find Ticket with 'id'={ticket_id}")
        return ticket

    def update_ticket(self, ticket: Ticket, params: dict[str, Any], caller: User) -> Ticket:
        if caller.agent:
            customer_id = self._customer(params)
            if customer_id is not None:
                ticket.customer_id = customer_id
        if "title" in params:
            ticket.title = str(params["title"])
        ticket.state_id = self._lookup(params, "state", STATES) or ticket.state_id
        ticket.priority_id = self._lookup(params, "priority", PRIORITIES) or ticket.priority_id
        ticket.group_id = self._lookup(params, "group", self.groups) or ticket.group_id
        ticket.attributes.update({k: params[k] for k in self.attributes if k in params})
        if params.get("article"):
            self._check_article(params["article"])
            self.add_article(ticket, params["article"], caller)
        self._touch(ticket)
        return ticket

    def _touch(self, ticket: Ticket) -> None:
        ticket.updated_at = datetime.now(UTC)
        ticket.indexed_at = time.monotonic() + self.search_lag

    def reindex(self) -> None:
        """Run Elasticsearch's background job now: every ticket as it is becomes searchable by query."""
        for ticket in self.tickets.values():
            ticket.indexed_at = 0.0

    def wire_ticket(self, ticket: Ticket, *, expand: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": ticket.id, "group_id": ticket.group_id, "priority_id": ticket.priority_id,
            "state_id": ticket.state_id, "organization_id": None, "number": str(77000 + ticket.id),
            "title": ticket.title, "owner_id": ticket.owner_id, "customer_id": ticket.customer_id,
            "create_article_type_id": 10 if ticket.article_ids else None,
            "create_article_sender_id": self.articles[ticket.article_ids[0]].sender_id if ticket.article_ids else None,
            "article_count": len(ticket.article_ids), "preferences": {}, "updated_by_id": ticket.created_by_id,
            "created_by_id": ticket.created_by_id, "created_at": iso(ticket.created_at),
            "updated_at": iso(ticket.updated_at), "article_ids": list(ticket.article_ids),
            "ticket_time_accounting_ids": [], "checklist_id": None, "referencing_checklist_ids": [],
        }  # fmt: skip
        out.update(dict.fromkeys(NULL_TICKET_KEYS))
        out.update({k: ticket.attributes.get(k) for k in self.attributes})
        if expand:
            customer = self.users[ticket.customer_id]
            out.update(
                {
                    "group": self.groups[ticket.group_id], "organization": None, "state": STATES[ticket.state_id],
                    "priority": PRIORITIES[ticket.priority_id], "owner": "-", "customer": customer.login,
                    "created_by": self.users[ticket.created_by_id].login,
                    "updated_by": self.users[ticket.created_by_id].login,
                    "create_article_type": "note" if ticket.article_ids else None,
                    "create_article_sender": (
                        SENDERS[self.articles[ticket.article_ids[0]].sender_id] if ticket.article_ids else None
                    ),
                }
            )  # fmt: skip
        return out

    # -- articles (notes §4) --

    @staticmethod
    def _check_article(article: Any) -> None:
        if not isinstance(article, dict) or "body" not in article:
            raise unprocessable('Need at least article: { body: "some text" }')

    def add_article(self, ticket: Ticket, params: dict[str, Any], caller: User) -> Article:
        type_name = params.get("type", "note")
        type_id = next((i for i, n in ARTICLE_TYPES.items() if n == type_name), None)
        if type_id is None:
            raise unprocessable(f"No lookup value found for 'type': \"{type_name}\"")
        sender_name = params.get("sender", "Agent" if caller.agent else "Customer")
        sender_id = next((i for i, n in SENDERS.items() if n == sender_name), None)
        if sender_id is None:
            raise unprocessable(f"No lookup value found for 'sender': \"{sender_name}\"")
        internal = bool(params.get("internal", False)) if caller.agent else False
        if not caller.agent and type_name not in ("note", "web"):
            raise ZammadError(403, "Not authorized")
        article = Article(
            id=max(self.articles, default=0) + 1,
            ticket_id=ticket.id,
            body=str(params["body"]),
            subject=params.get("subject"),
            type_id=type_id,
            sender_id=sender_id,
            internal=internal,
            content_type=str(params.get("content_type", "text/plain")),
            created_by_id=caller.id,
        )
        self.articles[article.id] = article
        ticket.article_ids.append(article.id)
        return article

    def wire_article(self, article: Article) -> dict[str, Any]:
        author = self.users[article.created_by_id]
        return {
            "id": article.id, "ticket_id": article.ticket_id, "type_id": article.type_id,
            "sender_id": article.sender_id, "from": f"{author.firstname} {author.lastname}".strip(), "to": None,
            "cc": None, "subject": article.subject, "reply_to": None, "message_id": None, "message_id_md5": None,
            "in_reply_to": None, "content_type": article.content_type, "references": None, "body": article.body,
            "internal": article.internal, "preferences": {}, "updated_by_id": author.id, "created_by_id": author.id,
            "origin_by_id": article.origin_by_id, "created_at": iso(article.created_at),
            "updated_at": iso(article.created_at), "attachments": [], "type": ARTICLE_TYPES[article.type_id],
            "sender": SENDERS[article.sender_id], "created_by": author.login, "updated_by": author.login,
        }  # fmt: skip

    # -- search (notes §5) --

    def _value(self, ticket: Ticket, attribute: str) -> str:
        if attribute == "title":
            return ticket.title
        if attribute == "number":
            return str(77000 + ticket.id)
        if attribute == "state.name":
            return STATES[ticket.state_id]
        if attribute in self.attributes:
            return str(ticket.attributes.get(attribute) or "")
        raise masked_error()  # an unknown attribute in a condition: UNCERTAIN what Zammad says; it is no hit

    def search(self, query: str | None, condition: dict[str, Any] | None) -> list[Ticket]:
        """Elasticsearch answers a query (only what its index holds yet); SQL answers a condition, or a query when
        there is no Elasticsearch (ILIKE over title, number and article texts)."""
        tickets = sorted(self.tickets.values(), key=lambda t: t.id)
        if query:
            needle = query.lower()
            if self.elasticsearch:
                now = time.monotonic()
                return [t for t in tickets if t.indexed_at <= now and self._es_match(t, query)]
            return [t for t in tickets if needle in self._sql_text(t)]
        hits = tickets
        for key, spec in (condition or {}).items():
            attribute = key.removeprefix("ticket.")
            operator, value = spec.get("operator"), str(spec.get("value", ""))
            if operator == "contains":
                hits = [t for t in hits if value.lower() in self._value(t, attribute).lower()]
            elif operator == "is":
                hits = [t for t in hits if self._value(t, attribute) == value]
            else:
                raise masked_error()
        return hits

    def _sql_text(self, ticket: Ticket) -> str:
        parts = [ticket.title, str(77000 + ticket.id)]
        parts += [f"{a.subject or ''} {a.body}" for a in self.articles.values() if a.ticket_id == ticket.id]
        return " ".join(parts).lower()

    def _es_match(self, ticket: Ticket, query: str) -> bool:
        attribute, sep, value = query.partition(":")
        if sep and attribute in ("title", "number", "tags", "state.name", *self.attributes):
            value = value.strip('"').lower()
            if attribute == "tags":
                return value in [t.lower() for t in ticket.tags]
            return value in self._value(ticket, attribute).lower()
        return query.lower().strip('"') in self._sql_text(ticket) + " " + " ".join(ticket.tags).lower()


__all__ = ["STATES", "ZammadError", "ZammadStore"]
