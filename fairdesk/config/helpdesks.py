"""Settings of the helpdesks fairdesk files into: `[helpdesk.NAME]` tables, one model per `kind`."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

FAIRDESK_STATUSES = ("new", "open", "pending", "solved", "closed")
DEFAULT_RT_PRIORITIES = {1: 90, 2: 70, 3: 50, 4: 30}
DEFAULT_RT_STATUSES = {
    "new": "new",
    "open": "open",
    "stalled": "pending",
    "resolved": "solved",
    "rejected": "closed",
    "deleted": "closed",
}
WebhookEvent = Literal["ticket.created", "ticket.details_added", "ticket.status_changed"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = get_args(WebhookEvent)


class _Helpdesk(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    timeout_seconds: float = Field(10.0, gt=0, le=120, description="Seconds to wait for the helpdesk per request.")
    retry_seconds: float = Field(
        15.0, gt=0, le=600, description="First retry delay after a failed delivery; it doubles per try, capped at 1 h."
    )


def _secret_set(value: SecretStr) -> SecretStr:
    from fairdesk.config.settings import PLACEHOLDER_SECRETS

    if value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS | {""}:
        raise ValueError("is a placeholder; put the real secret in the environment variable instead")
    return value


def _priority_map(value: dict[int, int]) -> dict[int, int]:
    missing = sorted({1, 2, 3, 4} - set(value))
    if missing or set(value) - {1, 2, 3, 4}:
        raise ValueError(f"needs exactly the keys 1, 2, 3 and 4 (fairdesk's priorities); missing {missing}")
    return value


def _status_map(value: dict[str, str]) -> dict[str, str]:
    wrong = {k: v for k, v in value.items() if v not in FAIRDESK_STATUSES}
    if wrong:
        raise ValueError(f"maps to unknown fairdesk statuses {wrong}; use {', '.join(FAIRDESK_STATUSES)}")
    return {k.lower(): v for k, v in value.items()}


class RtHelpdesk(_Helpdesk):
    kind: Literal["rt"] = Field(description="Request Tracker 5, through its REST2 API.")
    url: str = Field(description="RT's base URL, e.g. https://rt.example.com (fairdesk adds /REST/2.0).")
    queue: str = Field(description="The RT queue tickets are filed in: the one your email and phone tickets use.")
    token: SecretStr = Field(
        description="An RT auth token of the user fairdesk files as (FAIRDESK_HELPDESK__NAME__TOKEN)."
    )
    reference_field: str | None = Field(
        None,
        description="A ticket custom field to hold the fairdesk reference (e.g. External ID). Unset: the subject "
        "carries it ([FD-000123]), which TicketSQL finds in any RT.",
    )
    priority_map: dict[int, int] = Field(
        default_factory=lambda: dict(DEFAULT_RT_PRIORITIES),
        description="fairdesk priority (1 most urgent .. 4) to RT Priority, e.g. {1 = 90, 2 = 70, 3 = 50, 4 = 30}.",
    )
    status_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_RT_STATUSES),
        description="RT status to the status the customer's page shows (new, open, pending, solved, closed).",
    )
    sync_seconds: float = Field(30.0, ge=1, le=3600, description="Seconds between reads of filed tickets' status.")

    _token = field_validator("token")(_secret_set)
    _priorities = field_validator("priority_map")(_priority_map)
    _statuses = field_validator("status_map")(_status_map)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/").removesuffix("/REST/2.0")


class EmailHelpdesk(_Helpdesk):
    kind: Literal["email"] = Field(description="Any helpdesk, through its email intake address.")
    to: str = Field(description="The helpdesk's intake address, e.g. support@example.com.")
    from_address: str = Field(description="The sender of filed tickets, e.g. fairdesk@example.com.")
    smtp_host: str | None = Field(None, description="SMTP server. Unset: the [mail] section's.")
    smtp_port: int | None = Field(None, ge=1, le=65535, description="SMTP port. Unset: the [mail] section's.")
    smtp_security: Literal["starttls", "tls", "none"] | None = Field(
        None, description="starttls, tls or none. Unset: the [mail] section's."
    )
    smtp_username: str | None = Field(None, description="SMTP login. Unset: the [mail] section's.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password. Unset: the [mail] section's.")

    @field_validator("to", "from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if "@" not in value or any(c in value for c in " \r\n<>,"):
            raise ValueError("must be one plain email address such as support@example.com")
        return value


class WebhookHelpdesk(_Helpdesk):
    kind: Literal["webhook"] = Field(description="A signed JSON POST per ticket event (Standard Webhooks).")
    url: str = Field(description="Where events are POSTed.")
    secret: SecretStr = Field(
        description="Signing secret in the whsec_<base64> form (FAIRDESK_HELPDESK__NAME__SECRET); the receiver "
        "verifies webhook-signature with it."
    )
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(WEBHOOK_EVENTS), description="Which events to send."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.startswith("whsec_"):
            raise ValueError("must be in the whsec_<base64> form of the Standard Webhooks specification")
        try:
            key = base64.b64decode(raw.removeprefix("whsec_") + "==", validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("is not valid base64 after whsec_") from exc
        if len(key) < 24:
            raise ValueError("is too short: use at least 24 random bytes (e.g. whsec_ + `openssl rand -base64 32`)")
        return value


DEFAULT_ZAMMAD_PRIORITIES = {1: "3 high", 2: "2 normal", 3: "2 normal", 4: "1 low"}
DEFAULT_ZAMMAD_STATUSES = {
    "new": "new",
    "open": "open",
    "pending reminder": "pending",
    "pending close": "pending",
    "closed": "solved",
    "merged": "closed",
    "removed": "closed",
}


class ZammadHelpdesk(_Helpdesk):
    kind: Literal["zammad"] = Field(description="Zammad, through its REST API v1.")
    url: str = Field(description="Zammad's base URL, e.g. https://zammad.example.com (fairdesk adds /api/v1).")
    token: SecretStr = Field(
        description="A Zammad access token of the agent fairdesk files as, with ticket.agent permission "
        "(FAIRDESK_HELPDESK__NAME__TOKEN)."
    )
    group: str = Field(description="The Zammad group tickets are filed in: the one your email and phone tickets use.")
    customer: str = Field(
        description="Email of the Zammad customer a ticket is filed for until its customer gives an address on "
        "their link page (Zammad finds or creates that user); e.g. social@example.com."
    )
    priority_map: dict[int, str] = Field(
        default_factory=lambda: dict(DEFAULT_ZAMMAD_PRIORITIES),
        description="fairdesk priority (1 most urgent .. 4, from the content's severity) to a Zammad priority name.",
    )
    status_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ZAMMAD_STATUSES),
        description="Zammad ticket state to the status the customer's page shows (new, open, pending, solved, closed).",
    )
    tags: list[str] = Field(
        default_factory=list, description='Tags put on every ticket fairdesk files, e.g. ["social"].'
    )
    internal: bool = Field(
        True, description="File the first article and later ones as internal notes (hidden from the customer)."
    )
    reference_field: str | None = Field(
        None,
        description="A custom ticket attribute to hold the fairdesk reference (e.g. fairdesk_ref). Unset: the title "
        "carries it ([FD-000123]).",
    )
    sync_seconds: float = Field(30.0, ge=1, le=3600, description="Seconds between reads of filed tickets' state.")

    _token = field_validator("token")(_secret_set)
    _statuses = field_validator("status_map")(_status_map)

    @field_validator("priority_map")
    @classmethod
    def _priorities(cls, value: dict[int, str]) -> dict[int, str]:
        missing = sorted({1, 2, 3, 4} - set(value))
        if missing or set(value) - {1, 2, 3, 4}:
            raise ValueError(f"needs exactly the keys 1, 2, 3 and 4 (fairdesk's priorities); missing {missing}")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/").removesuffix("/api/v1")

    @field_validator("customer")
    @classmethod
    def _customer(cls, value: str) -> str:
        if "@" not in value or any(c in value for c in " \r\n<>,"):
            raise ValueError("must be one plain email address such as social@example.com")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        if any("," in t or not t.strip() for t in value):
            raise ValueError("each tag must be non-empty and without commas (Zammad splits tags on commas)")
        return [t.strip() for t in value]


ZendeskPriority = Literal["low", "normal", "high", "urgent"]
DEFAULT_ZENDESK_PRIORITIES: dict[int, ZendeskPriority] = {1: "urgent", 2: "high", 3: "normal", 4: "low"}
DEFAULT_ZENDESK_STATUSES = {
    "new": "new",
    "open": "open",
    "pending": "pending",  # Zendesk's pending waits on the customer, as fairdesk's does
    "hold": "open",  # waiting on a third party: to the customer it is still being worked on
    "solved": "solved",
    "closed": "closed",
}


class ZendeskHelpdesk(_Helpdesk):
    kind: Literal["zendesk"] = Field(description="Zendesk Support, through its Ticketing API v2.")
    subdomain: str | None = Field(
        None, description="Your Zendesk subdomain: acme for https://acme.zendesk.com. Set this or url."
    )
    url: str | None = Field(
        None, description="Base URL of a Zendesk-compatible server instead of a subdomain (tests, a proxy)."
    )
    email: str = Field(description="The Zendesk agent fairdesk files as; the API token is this agent's.")
    api_token: SecretStr = Field(
        description="A Zendesk API token (Admin Center > Apps and integrations > Zendesk API) "
        "(FAIRDESK_HELPDESK__NAME__API_TOKEN)."
    )
    group_id: int | None = Field(None, description="The Zendesk group new tickets are assigned to. Unset: routing.")
    brand_id: int | None = Field(None, description="The Zendesk brand of new tickets. Unset: the default brand.")
    ticket_form_id: int | None = Field(None, description="The ticket form of new tickets. Unset: the default form.")
    priority_map: dict[int, ZendeskPriority] = Field(
        default_factory=lambda: dict(DEFAULT_ZENDESK_PRIORITIES),
        description="fairdesk priority (1 most urgent .. 4, from the content and its severity) to Zendesk priority.",
    )
    status_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ZENDESK_STATUSES),
        description="Zendesk status to the status the customer's page shows (new, open, pending, solved, closed).",
    )
    tags: list[str] = Field(
        default_factory=lambda: ["fairdesk"], description="Tags put on every ticket fairdesk files, e.g. social."
    )
    public_first_comment: bool = Field(
        False,
        description="Whether the first comment (the post and why it was filed) is public. Default: an internal "
        "note, so Zendesk mails nobody fairdesk's triage notes.",
    )
    sync_seconds: float = Field(30.0, ge=1, le=3600, description="Seconds between reads of filed tickets' status.")

    _token = field_validator("api_token")(_secret_set)
    _priorities = field_validator("priority_map")(_priority_map)
    _statuses = field_validator("status_map")(_status_map)

    @field_validator("subdomain")
    @classmethod
    def _subdomain(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
            raise ValueError("is the first part of your Zendesk address: acme for https://acme.zendesk.com")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/").removesuffix("/api/v2") if value else value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if not re.fullmatch(r"[^\s,]+", t)]
        if bad:
            raise ValueError(f"Zendesk tags are single words without commas; fix {bad}")
        return [t.lower() for t in value]

    @model_validator(mode="after")
    def _one_address(self) -> ZendeskHelpdesk:
        if (self.subdomain is None) == (self.url is None):
            raise ValueError("set exactly one of subdomain (acme for https://acme.zendesk.com) or url")
        return self

    @property
    def base_url(self) -> str:
        return self.url or f"https://{self.subdomain}.zendesk.com"


HelpdeskSettings = Annotated[
    RtHelpdesk | EmailHelpdesk | WebhookHelpdesk | ZammadHelpdesk | ZendeskHelpdesk, Field(discriminator="kind")
]
HELPDESK_KINDS: tuple[type[BaseModel], ...] = (
    RtHelpdesk,
    EmailHelpdesk,
    WebhookHelpdesk,
    ZammadHelpdesk,
    ZendeskHelpdesk,
)
NOTIFY_ONLY = ("webhook",)  # kinds that only notify; every other kind can be a ticket's home


def check_homes(helpdesks: dict[str, BaseModel]) -> None:
    """At most one helpdesk is where tickets live; webhooks only notify. Raises ValueError naming the fix."""
    homes = [name for name, h in helpdesks.items() if getattr(h, "kind", None) not in NOTIFY_ONLY]
    if len(homes) > 1:
        raise ValueError(
            f"{' and '.join(homes)} are both ticket homes; file into one helpdesk (plus any number of webhooks)"
        )


__all__ = [
    "FAIRDESK_STATUSES",
    "HELPDESK_KINDS",
    "NOTIFY_ONLY",
    "EmailHelpdesk",
    "HelpdeskSettings",
    "RtHelpdesk",
    "WebhookHelpdesk",
    "ZendeskHelpdesk",
    "ZammadHelpdesk",
    "check_homes",
]
