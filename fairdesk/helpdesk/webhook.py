"""Signed JSON webhooks per ticket event, following the Standard Webhooks specification (`standardwebhooks`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from fairdesk.helpdesk.base import Event, EventKind, Filing, Refused, Unavailable

logger = logging.getLogger(__name__)

RETRY_STATUSES = {408, 409, 425, 429}  # besides 5xx: the receiver may take it later
UNREACHABLE_STATUSES = {502, 503, 504}  # a proxy or gateway speaking for a receiver that is not there
EVENT_TYPES = {
    EventKind.FOLLOWUP: "ticket.details_added",  # the customer added to their complaint, in the thread
    EventKind.DETAILS: "ticket.details_added",  # ... or on their link page
    EventKind.STATUS: "ticket.status_changed",
}


def filing_data(filing: Filing) -> dict[str, Any]:
    """The ticket as the receiver sees it. Built from Filing's fields only, so no reach can be in it."""
    return {
        "ref": filing.ref,
        "subject": filing.subject,
        "text": filing.text,
        "channel": filing.channel,
        "platform": filing.platform,
        "post_url": filing.post_url,
        "customer": filing.customer,
        "classification": {
            "label": filing.label,
            "score": filing.score,
            "severity": filing.severity,
            "model_version": filing.model_version,
            "triage_reason": filing.triage_reason,
        },
        "category": filing.category,
        "priority": filing.priority,
        "created_at": filing.created_at.isoformat(),
        "agent_url": filing.agent_url,
    }


class WebhookHelpdesk:
    """POSTs `{"type", "timestamp", "data"}` with `webhook-id`, `webhook-timestamp` and `webhook-signature`.

    Each message's id is derived from the ticket and event, so every retry of it carries the same `webhook-id` and
    the receiver can drop repeats; the timestamp and signature are made afresh per attempt, as the spec asks."""

    kind = "webhook"
    reads_status = False

    def __init__(
        self,
        name: str,
        *,
        url: str,
        secret: str,
        events: Sequence[str],
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.events = set(events)
        self._signer = Webhook(secret)
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._clock = clock or (lambda: datetime.now(UTC))

    def _post(self, msg_id: str, kind: str, data: dict[str, Any]) -> None:
        if kind not in self.events:
            return
        now = self._clock()
        body = json.dumps({"type": kind, "timestamp": now.isoformat(), "data": data}, separators=(",", ":"))
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(msg_id, now, body),
        }
        try:
            response = self._client.post(self.url, content=body.encode(), headers=headers)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"webhook {self.url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"webhook {self.url} could not be reached: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            logger.debug("%s: %s %s delivered (%d)", self.name, kind, msg_id, status)
            return
        reason = response.text.strip()[:300] or response.reason_phrase
        if status >= 500 or status in RETRY_STATUSES:
            wait = response.headers.get("Retry-After")
            raise Unavailable(f"webhook answered {status}: {reason}", float(wait) if wait and wait.isdigit() else None)
        raise Refused(f"webhook refused {kind} with {status}: {reason}")

    def create(self, filing: Filing) -> str:
        msg_id = f"msg_{filing.ref}_created"
        self._post(msg_id, "ticket.created", {"ticket": filing_data(filing)})
        return msg_id

    def find(self, filing: Filing) -> str | None:
        return None  # a receiver cannot be asked; the same webhook-id on a resend lets it drop the repeat

    def add(self, remote_id: str, filing: Filing, event: Event) -> None:
        kind = EVENT_TYPES[event.kind]
        detail: dict[str, Any] = {"key": event.key, "at": event.at.isoformat()}
        if event.kind == EventKind.STATUS:
            detail["status"] = event.status
        else:
            detail["source"] = "post" if event.kind == EventKind.FOLLOWUP else "link_page"
            detail["text"] = event.text
            if event.email:
                detail["email"] = event.email
        self._post(f"msg_{event.key.replace('/', '_')}", kind, {"ticket": filing_data(filing), "event": detail})

    def statuses(self, remote_ids: list[str]) -> dict[str, str]:
        return {}

    def check(self) -> str:
        """Whether the receiver answers HTTP, with a HEAD request that carries no event and no signature: any event
        sent as a test would be a real event to the receiver (an n8n flow or a Jira rule would act on it). So this
        proves the address, TLS and that something listens; the secret is proven by the first delivery only."""
        try:
            response = self._client.head(self.url)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"webhook {self.url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"webhook {self.url} could not be reached: {exc}") from exc
        if response.status_code in UNREACHABLE_STATUSES:
            raise Unavailable(f"webhook {self.url} answered {response.status_code}: the receiver behind it is down")
        return f"answers ({response.status_code} to HEAD; the signing secret is checked by the first delivery)"

    def close(self) -> None:
        self._client.close()
