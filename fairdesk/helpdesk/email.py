"""Filing by email to a helpdesk's intake address: every helpdesk turns email into tickets."""

from __future__ import annotations

import hashlib
import logging
from email.message import EmailMessage
from email.utils import formatdate

from fairdesk.helpdesk.base import Event, EventKind, Filing, Refused, Unavailable
from fairdesk.ticketing.mail import MailConfig, MailError, check_smtp, send_message

logger = logging.getLogger(__name__)

# SMTP replies that will not change on a retry (mailbox unknown, policy, syntax); anything else is tried again.
PERMANENT = ("recipient refused", "said 5")


class EmailHelpdesk:
    """Sends one well-formed message per ticket to ``to``, and one per later event, threaded under it.

    Every message has a Message-ID derived from the ticket (and event) and this installation, so a resend after a
    crash carries the same id and helpdesks that recognise repeats by Message-ID drop it. Follow-ups carry
    In-Reply-To and References to the ticket's first message, which is how most helpdesks thread them; Request
    Tracker threads by its own subject tag instead, so with RT prefer the `rt` kind. The helpdesk sees fairdesk's
    sender as the requester: fairdesk never invents the customer's address; one the customer gave with consent is
    in the body and the Reply-To of the follow-up that brings it."""

    kind = "email"
    reads_status = False

    def __init__(self, name: str, *, config: MailConfig, to: str, installation: str) -> None:
        self.name = name
        self.to = to
        self._config = config
        self._domain = config.sender.rpartition("@")[2] or "fairdesk.invalid"
        self._installation = hashlib.sha256(installation.encode()).hexdigest()[:10]

    def message_id(self, ref: str, event_key: str | None = None) -> str:
        part = event_key.replace("/", ".") if event_key else ref
        return f"<fairdesk.{part}.{self._installation}@{self._domain}>"

    def _message(self, filing: Filing, subject: str, body: str, message_id: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = self.to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies loop back to fairdesk
        message["X-Fairdesk-Reference"] = filing.ref
        message.set_content(body)
        return message

    def _send(self, message: EmailMessage) -> None:
        try:
            send_message(self._config, message)
        except MailError as exc:
            text = str(exc)
            if any(marker in text for marker in PERMANENT):
                raise Refused(text) from exc
            raise Unavailable(text) from exc

    def create(self, filing: Filing) -> str:
        message_id = self.message_id(filing.ref)
        self._send(self._message(filing, filing.title, filing.describe(), message_id))
        logger.info("%s: filed %s by email to %s", self.name, filing.ref, self.to)
        return message_id

    def find(self, filing: Filing) -> str | None:
        return None  # a mailbox cannot be asked; the stable Message-ID makes a resend recognisable

    def add(self, remote_id: str, filing: Filing, event: Event) -> None:
        if event.kind == EventKind.STATUS:
            return  # the helpdesk is the ticket's home; its status is its own
        what = "posted again in the thread" if event.kind == EventKind.FOLLOWUP else "added details on their page"
        message = self._message(
            filing,
            f"Re: {filing.title}",
            f"The customer {what}:\n\n{event.text}\n\nfairdesk reference {filing.ref}: {filing.agent_url}",
            self.message_id(filing.ref, event.key),
        )
        message["In-Reply-To"] = remote_id
        message["References"] = remote_id
        if event.email:
            message["Reply-To"] = event.email
        self._send(message)

    def statuses(self, remote_ids: list[str]) -> dict[str, str]:
        return {}

    def check(self) -> str:
        """Connect, EHLO, STARTTLS/TLS and log in as configured, then NOOP and QUIT: nothing is sent."""
        try:
            return check_smtp(self._config)
        except MailError as exc:
            raise Unavailable(str(exc)) from exc

    def close(self) -> None:
        pass
