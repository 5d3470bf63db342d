"""Zendesk Support through its Ticketing API v2, over plain httpx (the only module that talks to Zendesk)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from fairdesk.helpdesk.base import Event, EventKind, Filing, Refused, Unavailable

logger = logging.getLogger(__name__)

SHOW_MANY = 100  # ids per show_many call: Zendesk's maximum
RETRY_STATUSES = {408, 409, 425, 429}  # besides 5xx; 409 is Zendesk's answer to concurrent updates of one ticket
MINUTE = 60.0  # Zendesk's rate-limit window when a response names no reset


def _reason(response: httpx.Response) -> str:
    """Zendesk's own words: `error` and `description`, and for a 422 every field's problems from `details`."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    error = body.get("error")
    if isinstance(error, dict):  # 403s come as {"error": {"title", "message"}}
        error = ": ".join(str(error[k]) for k in ("title", "message") if error.get(k))
    parts = [str(p) for p in (error, body.get("description")) if p]
    details = body.get("details")
    if isinstance(details, dict):
        for field, problems in details.items():
            for problem in problems if isinstance(problems, list) else [problems]:
                text = problem.get("description") if isinstance(problem, dict) else problem
                parts.append(f"{field}: {text}")
    return "; ".join(parts)[:500] or str(body)[:300]


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


class ZendeskHelpdesk:
    """Files into Zendesk as the token's agent; the ticket's `external_id` is the fairdesk reference.

    Create carries an ``Idempotency-Key`` derived from the installation and the reference, so a retried create
    (a timeout, a lost answer) gets Zendesk's first answer back instead of a second ticket. The key lives 2 hours
    at Zendesk; a create whose outcome a crash left unknown is settled by ``find`` (the `external_id` listing)
    before any second create, which holds however long the daemon was down."""

    kind = "zendesk"
    reads_status = True

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        email: str,
        api_token: str,
        installation: str = "",
        group_id: int | None = None,
        brand_id: int | None = None,
        ticket_form_id: int | None = None,
        priority_map: Mapping[int, str] | None = None,
        status_map: Mapping[str, str] | None = None,
        tags: Sequence[str] = ("fairdesk",),
        public_first_comment: bool = False,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.group_id, self.brand_id, self.ticket_form_id = group_id, brand_id, ticket_form_id
        self.priority_map = dict(priority_map or {})
        self.status_map = {k.lower(): v for k, v in (status_map or {}).items()}
        self.tags = list(tags)
        self.public_first_comment = public_first_comment
        # Two fairdesk installations filing into one Zendesk both have an FD-000001: the key must tell them apart.
        self._key_prefix = "fairdesk-" + hashlib.sha256(installation.encode()).hexdigest()[:12]
        self._clock = clock
        self._paused_until = 0.0
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v2",
            auth=httpx.BasicAuth(f"{email}/token", api_token),
            headers={"Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def idempotency_key(self, filing: Filing) -> str:
        return f"{self._key_prefix}-{filing.ref}"

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        wait = self._paused_until - self._clock()
        if wait > 0:  # the last answer said the minute's requests are used up: do not spend a 429 to hear it again
            raise Unavailable(f"Zendesk rate limit used up; next request in {wait:.0f} s", wait)
        try:
            response = self._client.request(method, path, **kw)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"Zendesk did not answer {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"Zendesk could not be reached: {exc}") from exc
        self._note_rate_limit(response)
        status = response.status_code
        if status >= 500 or status in RETRY_STATUSES:
            retry_after = _seconds(response.headers.get("Retry-After"))
            raise Unavailable(f"Zendesk answered {status} to {method} {path}: {_reason(response)}", retry_after)
        if status >= 400:
            raise Refused(f"Zendesk refused {method} {path} ({status}): {_reason(response)}")
        return response

    def _note_rate_limit(self, response: httpx.Response) -> None:
        headers = response.headers
        remaining = headers.get("ratelimit-remaining") or headers.get("x-rate-limit-remaining")
        if remaining is not None and remaining.strip() == "0":
            reset = _seconds(headers.get("ratelimit-reset")) or MINUTE
            self._paused_until = self._clock() + reset
            logger.info("%s: Zendesk rate limit used up; pausing %.0f s", self.name, reset)

    def _json(self, response: httpx.Response, key: str) -> Any:
        try:
            body = response.json()
        except ValueError as exc:
            raise Unavailable(f"Zendesk answered with something that is not JSON ({response.status_code})") from exc
        if not isinstance(body, dict) or key not in body:
            raise Unavailable(f"Zendesk's answer has no {key!r}: {str(body)[:200]}")
        return body[key]

    def _ticket_body(self, filing: Filing) -> dict[str, Any]:
        tags = [*self.tags, f"fairdesk_{filing.channel}"]
        if filing.platform:
            tags.append(f"fairdesk_{filing.platform}")
        ticket: dict[str, Any] = {
            "subject": filing.title,
            "comment": {"body": filing.describe(), "public": self.public_first_comment},
            "external_id": filing.ref,
            "tags": tags,
        }
        if filing.priority in self.priority_map:
            ticket["priority"] = self.priority_map[filing.priority]
        for key in ("group_id", "brand_id", "ticket_form_id"):
            if getattr(self, key) is not None:
                ticket[key] = getattr(self, key)
        if filing.requester_email:
            ticket["requester"] = {"name": filing.requester_email.split("@")[0], "email": filing.requester_email}
        return {"ticket": ticket}

    def create(self, filing: Filing) -> str:
        headers = {"Idempotency-Key": self.idempotency_key(filing)}
        try:
            response = self._request("POST", "/tickets", json=self._ticket_body(filing), headers=headers)
        except Refused as exc:
            if "IdempotentRequestError" not in str(exc):
                raise
            # The key was used with another body (the customer gave an email since): whatever that first try did
            # is what the external_id listing shows.
            found = self.find(filing)
            if found is not None:
                return found
            raise Unavailable(f"Zendesk holds another request under this ticket's key: {exc}") from exc
        ticket = self._json(response, "ticket")
        remote_id = str(ticket.get("id", "")) if isinstance(ticket, dict) else ""
        if not remote_id:
            raise Unavailable(f"Zendesk created a ticket but did not say its id: {str(ticket)[:200]}")
        how = "replayed" if response.headers.get("x-idempotency-lookup") == "hit" else "new"
        logger.info("%s: filed %s as Zendesk #%s (%s)", self.name, filing.ref, remote_id, how)
        return remote_id

    def find(self, filing: Filing) -> str | None:
        response = self._request("GET", "/tickets", params={"external_id": filing.ref, "page[size]": "100"})
        tickets = [t for t in self._json(response, "tickets") if isinstance(t, dict)]
        # external_id is not unique in Zendesk: prefer the one with our subject, then the oldest.
        ours = [t for t in tickets if t.get("subject") == filing.title] or tickets
        return str(min(int(t["id"]) for t in ours)) if ours else None

    def add(self, remote_id: str, filing: Filing, event: Event) -> None:
        if event.kind == EventKind.STATUS:
            return  # Zendesk is the ticket's home: its status is read from Zendesk, never pushed into it
        if event.kind == EventKind.FOLLOWUP:
            text = f"The customer posted again in the thread:\n\n{event.text}\n\n[fairdesk {event.key}]"
        else:
            text = f"The customer added details on their fairdesk page:\n\n{event.text}\n\n[fairdesk {event.key}]"
        # An internal note: a public comment would mail the customer their own words back.
        ticket: dict[str, Any] = {"comment": {"body": text, "public": False}}
        if event.kind == EventKind.DETAILS and event.email:
            ticket["requester_id"] = self._user_id(event.email)
        self._request("PUT", f"/tickets/{remote_id}", json={"ticket": ticket})
        if "requester_id" in ticket:
            logger.info("%s: Zendesk #%s requester set from the customer's page", self.name, remote_id)

    def _user_id(self, email: str) -> int:
        # The requester object is documented for create only; on update Zendesk takes requester_id.
        user = {"name": email.split("@")[0], "email": email}
        response = self._request("POST", "/users/create_or_update", json={"user": user})
        found = self._json(response, "user")
        if not isinstance(found, dict) or not isinstance(found.get("id"), int):
            raise Unavailable(f"Zendesk did not say the user's id: {str(found)[:200]}")
        return int(found["id"])

    def statuses(self, remote_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        ids = [i for i in remote_ids if i.isdigit()]
        for start in range(0, len(ids), SHOW_MANY):
            chunk = ids[start : start + SHOW_MANY]
            response = self._request("GET", "/tickets/show_many", params={"ids": ",".join(chunk)})
            for ticket in self._json(response, "tickets"):
                raw = str(ticket.get("status", "")).lower() if isinstance(ticket, dict) else ""
                if raw in self.status_map:
                    out[str(ticket["id"])] = self.status_map[raw]
                else:
                    logger.debug("%s: Zendesk status %r has no mapping; left as it is", self.name, raw)
        return out

    def check(self) -> str:
        """Read-only: the agent the credentials belong to (GET /users/me); raises HelpdeskError if not accepted."""
        user = self._json(self._request("GET", "/users/me.json"), "user")
        if not isinstance(user, dict) or user.get("id") is None:
            raise Refused("Zendesk answered as an anonymous user: the email and API token were not accepted")
        if user.get("role") == "end-user":
            raise Refused(f"{user.get('email')} is an end user in Zendesk; fairdesk files as an agent")
        return f"authenticated as {user.get('email')} ({user.get('role')})"

    def close(self) -> None:
        self._client.close()


__all__ = ["ZendeskHelpdesk"]
