"""Agents' email replies to the customer's contact address, sent over SMTP (the only module that imports smtplib)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.models import MailOutbox, MailState, utcnow

logger = logging.getLogger(__name__)

MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class MailConfig:
    """Where and how to send; built by the composition root from the [mail] settings."""

    host: str
    sender: str
    port: int = 587
    security: str = "starttls"  # "starttls" | "tls" | "none"
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    def __repr__(self) -> str:  # never show the password in logs or tracebacks
        return f"MailConfig(host={self.host!r}, port={self.port}, security={self.security!r}, sender={self.sender!r})"


class MailError(Exception):
    """The SMTP server could not be reached, or refused the message."""


def build_message(config: MailConfig, *, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or None)
    message.set_content(body)
    return message


def _text(reply: bytes | str) -> str:
    # the server's reply arrives as bytes, but SMTPResponseException is declared to take str as well
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _open(config: MailConfig) -> smtplib.SMTP:
    if config.security == "tls":
        return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=ssl.create_default_context())
    return smtplib.SMTP(config.host, config.port, timeout=config.timeout)


def check_smtp(config: MailConfig) -> str:
    """Connect, EHLO, STARTTLS or TLS and log in as configured, then NOOP: sends nothing. Raises MailError."""
    try:
        with _open(config) as client:
            client.ehlo()
            if config.security == "starttls":
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if config.username:
                client.login(config.username, config.password or "")
            code, reply = client.noop()
            if code != 250:
                raise MailError(f"SMTP server answered NOOP with {code} {_text(reply)}")
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP server said {exc.smtp_code} {_text(exc.smtp_error)}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"could not reach {config.host}:{config.port}: {exc}") from exc
    login = f", logged in as {config.username}" if config.username else ""
    return f"{config.host}:{config.port} answers ({config.security}{login})"


def send_message(config: MailConfig, message: EmailMessage) -> None:
    """Send one message; raises MailError with the server's reason on any failure."""
    try:
        with _open(config) as client:
            if config.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if config.username:
                client.login(config.username, config.password or "")
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        reasons = "; ".join(f"{code} {msg.decode(errors='replace')}" for code, msg in exc.recipients.values())
        raise MailError(f"recipient refused: {reasons}") from exc
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP server said {exc.smtp_code} {_text(exc.smtp_error)}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"could not send through {config.host}:{config.port}: {exc}") from exc
    if refused:
        raise MailError(f"recipient refused: {refused}")


def deliver(*, sessions: SessionFactory, mail_id: int, config: MailConfig | None) -> MailOutbox:
    """Send one recorded email now and record the outcome on its row; failures are kept, never lost."""
    with transaction(sessions) as session:
        row = session.get(MailOutbox, mail_id)
        if row is None:
            raise LookupError(f"no email {mail_id}")
        if row.state == MailState.SENT:
            return row
        row.attempts += 1
        session.add(row)
        to, subject, body = row.to_addr, row.subject, row.body
    error: str | None = None
    message_id: str | None = None
    if config is None:
        error = "email is not set up: configure [mail] smtp_host and from_address"
    else:
        message = build_message(config, to=to, subject=subject, body=body)
        message_id = message["Message-ID"]
        try:
            send_message(config, message)
        except MailError as exc:
            error = str(exc)[:MAX_ERROR]
    with transaction(sessions) as session:
        row = session.get(MailOutbox, mail_id)
        assert row is not None
        if error is None:
            row.state, row.sent_at, row.message_id, row.last_error = MailState.SENT, utcnow(), message_id, None
            logger.info("email for ticket %s sent (mail %s)", row.ticket_id, mail_id)
        else:
            row.state, row.last_error = MailState.FAILED, error
            logger.warning("email for ticket %s not sent (mail %s): %s", row.ticket_id, mail_id, error)
        session.add(row)
        return row
