"""Request Tracker 5 through its REST2 API, over plain httpx (the only module that talks to RT)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from fairdesk.helpdesk.base import Event, EventKind, Filing, Refused, Unavailable

logger = logging.getLogger(__name__)

STATUS_BATCH = 50  # ids per TicketSQL query; keeps the URL short and each request quick
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:300]
    return str(body)[:300]


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class RtHelpdesk:
    """Files into one RT queue as the token's user. The fairdesk reference goes in the subject (`[FD-000123] ...`),
    which TicketSQL finds in any RT; a custom field holds it too when the operator names one.

    RT has no idempotency key, so a create whose outcome is unknown is settled by ``find`` (a TicketSQL search,
    answered from the database at once) before any second create."""

    kind = "rt"
    reads_status = True

    def __init__(
        self,
        name: str,
        *,
        url: str,
        queue: str,
        token: str,
        reference_field: str | None = None,
        priority_map: Mapping[int, int] | None = None,
        status_map: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.queue = queue
        self.reference_field = reference_field
        self.priority_map = dict(priority_map or {})
        self.status_map = {k.lower(): v for k, v in (status_map or {}).items()}
        self._client = httpx.Client(
            base_url=url.rstrip("/") + "/REST/2.0",
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kw)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"RT did not answer {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"RT could not be reached: {exc}") from exc
        if response.status_code in RETRY_STATUSES:
            wait = response.headers.get("Retry-After")
            retry_after = float(wait) if wait and wait.isdigit() else None
            raise Unavailable(
                f"RT answered {response.status_code} to {method} {path}: {_reason(response)}", retry_after
            )
        if response.status_code in (401, 403):
            raise Refused(f"RT refused {method} {path} ({response.status_code}): {_reason(response)}")
        if response.status_code >= 400:
            raise Refused(f"RT answered {response.status_code} to {method} {path}: {_reason(response)}")
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise Unavailable(f"RT answered with something that is not JSON ({response.status_code})") from exc

    def create(self, filing: Filing) -> str:
        body: dict[str, Any] = {
            "Queue": self.queue,
            "Subject": filing.title,
            "Content": filing.describe(),
            "ContentType": "text/plain",
        }
        if filing.priority in self.priority_map:
            body["Priority"] = self.priority_map[filing.priority]
        if filing.requester_email:
            body["Requestor"] = filing.requester_email
        if self.reference_field:
            body["CustomFields"] = {self.reference_field: filing.ref}
        created = self._json(self._request("POST", "/ticket", json=body))
        remote_id = str(created.get("id", "")) if isinstance(created, dict) else ""
        if not remote_id:
            raise Unavailable(f"RT created a ticket but did not say its id: {str(created)[:200]}")
        if self.reference_field:
            self._check_reference(remote_id, filing.ref)
        logger.info("%s: filed %s as RT #%s", self.name, filing.ref, remote_id)
        return remote_id

    def _check_reference(self, remote_id: str, ref: str) -> None:
        # RT silently drops a custom field it does not know or that is not applied to the queue: read it back.
        ticket = self._json(self._request("GET", f"/ticket/{remote_id}"))
        values = [
            v
            for cf in ticket.get("CustomFields", [])
            if isinstance(cf, dict) and cf.get("name") == self.reference_field
            for v in cf.get("values", [])
        ]
        if ref not in values:
            raise Refused(
                f"RT #{remote_id} was filed, but the custom field {self.reference_field!r} was dropped: create it and "
                f"apply it to queue {self.queue!r}, or unset reference_field"
            )

    def find(self, filing: Filing) -> str | None:
        if self.reference_field:
            where = f"CF.{{{self.reference_field}}} = {_quote(filing.ref)}"
        else:
            where = f"Subject LIKE {_quote(f'[{filing.ref}]')}"
        query = f"Queue = {_quote(self.queue)} AND {where}"
        found = self._json(self._request("GET", "/tickets", params={"query": query, "orderby": "id", "order": "ASC"}))
        items = found.get("items", []) if isinstance(found, dict) else []
        return str(items[0]["id"]) if items else None

    def add(self, remote_id: str, filing: Filing, event: Event) -> None:
        if event.kind == EventKind.STATUS:
            return  # RT is the ticket's home: its status is read from RT, never pushed into it
        if event.kind == EventKind.FOLLOWUP:
            text = f"The customer posted again in the thread:\n\n{event.text}\n\n[fairdesk {event.key}]"
        else:
            text = f"The customer added details on their fairdesk page:\n\n{event.text}\n\n[fairdesk {event.key}]"
        # A comment, not correspondence: correspondence would mail the customer their own words back.
        self._request("POST", f"/ticket/{remote_id}/comment", json={"Content": text, "ContentType": "text/plain"})
        if event.kind == EventKind.DETAILS and event.email:
            self._request("PUT", f"/ticket/{remote_id}", json={"Requestor": event.email})
            logger.info("%s: RT #%s requestor set from the customer's page", self.name, remote_id)

    def statuses(self, remote_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, len(remote_ids), STATUS_BATCH):
            chunk = [i for i in remote_ids[start : start + STATUS_BATCH] if i.isdigit()]
            if not chunk:
                continue
            query = " OR ".join(f"id = {i}" for i in chunk)
            params = {"query": query, "fields": "Status", "per_page": str(STATUS_BATCH)}
            found = self._json(self._request("GET", "/tickets", params=params))
            for item in found.get("items", []) if isinstance(found, dict) else []:
                raw = str(item.get("Status", "")).lower()
                if raw in self.status_map:
                    out[str(item["id"])] = self.status_map[raw]
                else:
                    logger.debug("%s: RT status %r has no mapping; left as it is", self.name, raw)
        return out

    def check(self) -> str:
        """Read-only: the token is accepted and can see the queue (GET /queue/NAME); raises HelpdeskError if not."""
        queue = self._json(self._request("GET", f"/queue/{quote(self.queue, safe='')}"))
        if not isinstance(queue, dict) or "id" not in queue:
            raise Refused(f"RT did not show queue {self.queue!r}: {str(queue)[:200]}")
        return f"token accepted; queue {queue.get('Name', self.queue)!r} is #{queue['id']}"

    def close(self) -> None:
        self._client.close()
