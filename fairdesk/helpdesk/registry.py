"""Which module serves each `[helpdesk.NAME]` kind, and building them from settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fairdesk.config.helpdesks import EmailHelpdesk as EmailSettings
from fairdesk.config.helpdesks import RtHelpdesk as RtSettings
from fairdesk.config.helpdesks import WebhookHelpdesk as WebhookSettings
from fairdesk.config.helpdesks import ZammadHelpdesk as ZammadSettings
from fairdesk.config.helpdesks import ZendeskHelpdesk as ZendeskSettings
from fairdesk.config.settings import Settings
from fairdesk.helpdesk.base import Helpdesk
from fairdesk.ticketing.mail import MailConfig


def _rt(name: str, s: RtSettings, settings: Settings) -> Helpdesk:
    from fairdesk.helpdesk.rt import RtHelpdesk

    return RtHelpdesk(
        name,
        url=s.url,
        queue=s.queue,
        token=s.token.get_secret_value(),
        reference_field=s.reference_field,
        priority_map=s.priority_map,
        status_map=s.status_map,
        timeout=s.timeout_seconds,
    )


def _email(name: str, s: EmailSettings, settings: Settings) -> Helpdesk:
    from fairdesk.helpdesk.email import EmailHelpdesk

    mail = settings.mail
    host = s.smtp_host or mail.smtp_host
    if not host:
        raise ValueError(f"config key `helpdesk.{name}.smtp_host`: is needed (or set [mail] smtp_host)")
    password = s.smtp_password or mail.smtp_password
    config = MailConfig(
        host=host,
        sender=s.from_address,
        port=s.smtp_port or mail.smtp_port,
        security=s.smtp_security or mail.smtp_security,
        username=s.smtp_username or mail.smtp_username,
        password=password.get_secret_value() if password else None,
        timeout=s.timeout_seconds,
    )
    return EmailHelpdesk(name, config=config, to=s.to, installation=settings.public_url)


def _webhook(name: str, s: WebhookSettings, settings: Settings) -> Helpdesk:
    from fairdesk.helpdesk.webhook import WebhookHelpdesk

    return WebhookHelpdesk(
        name, url=s.url, secret=s.secret.get_secret_value(), events=s.events, timeout=s.timeout_seconds
    )


def _zendesk(name: str, s: ZendeskSettings, settings: Settings) -> Helpdesk:
    from fairdesk.helpdesk.zendesk import ZendeskHelpdesk

    return ZendeskHelpdesk(
        name,
        base_url=s.base_url,
        email=s.email,
        api_token=s.api_token.get_secret_value(),
        installation=settings.public_url,
        group_id=s.group_id,
        brand_id=s.brand_id,
        ticket_form_id=s.ticket_form_id,
        priority_map=s.priority_map,
        status_map=s.status_map,
        tags=s.tags,
        public_first_comment=s.public_first_comment,
        timeout=s.timeout_seconds,
    )


def _zammad(name: str, s: ZammadSettings, settings: Settings) -> Helpdesk:
    from fairdesk.helpdesk.zammad import ZammadHelpdesk

    return ZammadHelpdesk(
        name,
        url=s.url,
        token=s.token.get_secret_value(),
        group=s.group,
        customer=s.customer,
        priority_map=s.priority_map,
        status_map=s.status_map,
        tags=s.tags,
        internal=s.internal,
        reference_field=s.reference_field,
        timeout=s.timeout_seconds,
    )


KINDS: dict[str, Callable[[str, Any, Settings], Helpdesk]] = {
    "rt": _rt,
    "email": _email,
    "webhook": _webhook,
    "zendesk": _zendesk,
    "zammad": _zammad,
}


def build_helpdesks(settings: Settings) -> dict[str, Helpdesk]:
    """Every configured helpdesk by name; none configured means fairdesk's own queue is the only one."""
    return {name: KINDS[h.kind](name, h, settings) for name, h in settings.helpdesk.items()}
