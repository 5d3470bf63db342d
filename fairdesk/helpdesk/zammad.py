"""Zammad through its REST API v1, over plain httpx (the only module that talks to Zammad)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from fairdesk.helpdesk.base import Event, EventKind, Filing, Refused, Unavailable

logger = logging.getLogger(__name__)

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 3600.0  # a proxy's Retry-After beyond an hour is not a promise worth keeping a ticket waiting for
SEARCH_LIMIT = 50  # condition-search hits read when settling; a reference matches one ticket, rarely a few
NOT_FOUND_CUSTOMER = "No lookup value found for 'customer'"


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and (body.get("error_human") or body.get("error")):
        return str(body.get("error_human") or body.get("error"))[:300]
    return str(body)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    wait = response.headers.get("Retry-After", "").strip()
    return min(float(wait), MAX_RETRY_AFTER) if wait.isdigit() else None


class ZammadHelpdesk:
    """Files into one Zammad group as the token's user: a ticket whose first article is a ``note`` (so Zammad mails
    nobody), sent by ``Customer`` because it holds the customer's words.

    Zammad has no idempotency key, so a create whose outcome is unknown is settled by ``find`` before any second
    create. ``find`` is a *condition* search, which Zammad answers from its database; a ``query`` search would go to
    Elasticsearch, which indexes new tickets in the background and so can miss the very ticket a crash left behind.
    The reference it matches is the ``[FD-000123]`` in the title (a column every Zammad has), or a custom ticket
    attribute when the operator names one (``reference_field``)."""

    kind = "zammad"
    reads_status = True

    def __init__(
        self,
        name: str,
        *,
        url: str,
        token: str,
        group: str,
        customer: str,
        priority_map: Mapping[int, str] | None = None,
        status_map: Mapping[str, str] | None = None,
        tags: Sequence[str] = (),
        internal: bool = True,
        reference_field: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.group = group
        self.customer = customer
        self.priority_map = dict(priority_map or {})
        self.status_map = {k.lower(): v for k, v in (status_map or {}).items()}
        self.tags = list(tags)
        self.internal = internal
        self.reference_field = reference_field
        self._client = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={
                "Authorization": f"Token token={token}",
                "Accept": "application/json",
                "User-Agent": "fairdesk",
            },
            timeout=timeout,
            transport=transport,
        )

    # -- the one place errors are translated --

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self._client.request(method, path, **kw)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"Zammad did not answer {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"Zammad could not be reached: {exc}") from exc
        status = response.status_code
        if status in RETRY_STATUSES:
            raise Unavailable(
                f"Zammad answered {status} to {method} {path}: {_reason(response)}", _retry_after(response)
            )
        if status in (401, 403):
            raise Refused(f"Zammad refused {method} {path} ({status}): {_reason(response)}; check the token's user")
        if not 200 <= status < 300:
            raise Refused(f"Zammad answered {status} to {method} {path}: {_reason(response)}")
        try:
            return response.json()
        except ValueError as exc:
            # The call may have been carried out: the delivery stays uncertain and is settled by find().
            raise Unavailable(f"Zammad answered {method} {path} with something that is not JSON ({status})") from exc

    # -- the Helpdesk protocol --

    def _article(self, subject: str, body: str) -> dict[str, Any]:
        return {
            "subject": subject,
            "body": body,
            "type": "note",  # never "email": that would send mail, even when internal
            "internal": self.internal,
            "content_type": "text/plain",
            "sender": "Customer",
        }

    def create(self, filing: Filing) -> str:
        body: dict[str, Any] = {
            "title": filing.title,
            "group": self.group,
            "customer_id": f"guess:{filing.requester_email or self.customer}",
            "article": self._article(filing.title, filing.describe()),
        }
        if filing.priority in self.priority_map:
            body["priority"] = self.priority_map[filing.priority]
        if self.tags:
            body["tags"] = ",".join(self.tags)  # Zammad splits one string on commas; an array is not read
        if self.reference_field:
            body[self.reference_field] = filing.ref
        created = self._request("POST", "/tickets", json=body)
        remote_id = str(created.get("id", "")) if isinstance(created, dict) else ""
        if not remote_id.isdigit():
            raise Unavailable(f"Zammad created a ticket but did not say its id: {str(created)[:200]}")
        if self.reference_field and created.get(self.reference_field) != filing.ref:
            # Zammad drops attributes it does not know; without the reference find() could never settle a crash.
            raise Refused(
                f"Zammad filed ticket {remote_id} but dropped the attribute {self.reference_field!r}: add it as a "
                "ticket attribute (Settings -> Objects) and restart Zammad, or unset reference_field"
            )
        logger.info("%s: filed %s as Zammad ticket %s (#%s)", self.name, filing.ref, remote_id, created.get("number"))
        return remote_id

    def find(self, filing: Filing) -> str | None:
        field = self.reference_field or "title"
        value = filing.ref if self.reference_field else f"[{filing.ref}]"
        # "contains" is the operator Zammad's own tests pin; the exact match is checked here.
        condition = {f"ticket.{field}": {"operator": "contains", "value": value}}
        found = self._request(
            "POST",
            "/tickets/search",
            params={"expand": "true"},
            json={"condition": condition, "limit": SEARCH_LIMIT, "sort_by": "id", "order_by": "asc"},
        )
        if not isinstance(found, list):
            raise Unavailable(f"Zammad's ticket search answered {type(found).__name__}, not a list")
        hits = sorted(
            int(t["id"])
            for t in found
            if isinstance(t, dict)
            and str(t.get("id", "")).isdigit()
            and (t.get(field) == value if self.reference_field else str(t.get(field, "")).startswith(value))
        )
        return str(hits[0]) if hits else None

    def add(self, remote_id: str, filing: Filing, event: Event) -> None:
        if event.kind == EventKind.STATUS:
            return  # Zammad is the ticket's home: its state is read from Zammad, never pushed into it
        marker = f"[fairdesk {event.key}]"
        if not self._has_article(remote_id, marker):  # a retry after a lost answer must not add it twice
            if event.kind == EventKind.FOLLOWUP:
                subject, text = "Follow-up post", f"The customer posted again in the thread:\n\n{event.text}"
            else:
                subject, text = "Details", f"The customer added details on their fairdesk page:\n\n{event.text}"
            article = {"ticket_id": int(remote_id), **self._article(subject, f"{text}\n\n{marker}")}
            self._request("POST", "/ticket_articles", json=article)
        if event.kind == EventKind.DETAILS and event.email:
            self._set_customer(remote_id, event.email)

    def _has_article(self, remote_id: str, marker: str) -> bool:
        articles = self._request("GET", f"/ticket_articles/by_ticket/{remote_id}")
        return isinstance(articles, list) and any(
            isinstance(a, dict) and marker in str(a.get("body", "")) for a in articles
        )

    def _set_customer(self, remote_id: str, email: str) -> None:
        # PUT looks a customer up by login or email only ("guess:" works on create alone), so a new address is
        # made a Zammad customer first; an agent's token may create customers.
        try:
            self._request("PUT", f"/tickets/{remote_id}", json={"customer": email})
        except Refused as exc:
            if NOT_FOUND_CUSTOMER not in str(exc):
                raise
            user = self._request("POST", "/users", json={"email": email, "firstname": "", "lastname": ""})
            if not isinstance(user, dict) or not str(user.get("id", "")).isdigit():
                raise Unavailable(f"Zammad created a customer but did not say its id: {str(user)[:200]}") from exc
            self._request("PUT", f"/tickets/{remote_id}", json={"customer_id": int(user["id"])})
        logger.info("%s: Zammad ticket %s customer set from the customer's page", self.name, remote_id)

    def statuses(self, remote_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for remote_id in remote_ids:
            if not remote_id.isdigit():
                continue
            try:
                ticket = self._request("GET", f"/tickets/{remote_id}", params={"expand": "true"})
            except Refused as exc:
                # One deleted ticket, or one moved to a group the token cannot see, must not stop the others.
                logger.debug("%s: Zammad ticket %s not readable: %s", self.name, remote_id, exc)
                continue
            raw = str(ticket.get("state", "")).lower() if isinstance(ticket, dict) else ""
            if raw in self.status_map:
                out[remote_id] = self.status_map[raw]
            else:
                logger.debug("%s: Zammad state %r has no mapping; left as it is", self.name, raw)
        return out

    def check(self) -> str:
        """Read-only: the user the token belongs to (GET /users/me); raises HelpdeskError if not accepted."""
        user = self._request("GET", "/users/me")
        if not isinstance(user, dict) or "id" not in user:
            raise Unavailable(f"Zammad's /users/me answer has no user: {str(user)[:200]}")
        return f"authenticated as {user.get('login') or user.get('email')}"

    def close(self) -> None:
        self._client.close()


__all__ = ["ZammadHelpdesk"]
