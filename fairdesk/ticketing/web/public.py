"""Customer-facing pages: the ticket link page, the web contact form, and the sample platform's public view."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, select

from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.incident_desk import incident_of
from fairdesk.ticketing.models import Ticket, saved_id
from fairdesk.ticketing.store import add_customer_details, open_web_ticket, timeline
from fairdesk.ticketing.tokens import well_formed
from fairdesk.ticketing.web.limits import check, client_key
from fairdesk.ticketing.web.pages import TicketNotFound, WebContext, csrf_ok, render

router = APIRouter()

MAX_ORDER = 64
MAX_DETAILS = 5000
MAX_EMAIL = 254
MAX_SUBJECT = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_TOKEN_KEY = 64  # the confirmation marker hashes at most this much of a path
STATUS_HELP = {
    "new": "We have your request; an agent will pick it up in turn.",
    "open": "An agent is working on it.",
    "pending": "We are waiting for details from you: add them below.",
    "solved": "We think this is solved. If it is not, add details below and we will reopen it.",
    "closed": "This ticket is closed.",
}


def _ctx(request: Request) -> WebContext:
    return request.app.state.ctx


def _token_key(token: str) -> str:
    return token[:MAX_TOKEN_KEY]


def _sent_marker(token: str) -> str:
    return hashlib.sha256(_token_key(token).encode()).hexdigest()[:16]


def _ticket_for(session: Session, token: str) -> Ticket | None:
    # Malformed links cost the same hash and indexed lookup as well-formed unknown ones, so timing tells nothing.
    digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
    ticket = session.exec(select(Ticket).where(Ticket.token_hash == digest)).first()
    return ticket if well_formed(token) else None


def _field_errors(*, email: str, details: str, order_number: str = "", email_required: bool = False) -> list[str]:
    errors = []
    if email_required and not email:
        errors.append("Please give an email address so we can answer you.")
    if email and (len(email) > MAX_EMAIL or not _EMAIL.match(email)):
        errors.append("That email address does not look right.")
    if len(details) > MAX_DETAILS:
        errors.append(f"Please keep the description under {MAX_DETAILS} characters.")
    if len(order_number) > MAX_ORDER:
        errors.append(f"Order numbers are at most {MAX_ORDER} characters.")
    return errors


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html", sample=_ctx(request).sample_replies is not None)


@router.get("/t/{token}", response_class=HTMLResponse)
def ticket_page(request: Request, token: str) -> HTMLResponse:
    """The customer's page. Known, unknown and malformed links do the same work, and the last two get the plain 404."""
    ctx = _ctx(request)
    limits = ctx.limits
    # Per client only: a flood from one client must not use up the link for its customer, and an unknown link
    # must not cost a row of its own.
    check(ctx.sessions, ctx.secret_key, [("view-client", client_key(request), limits.view_per_client)])
    sent = request.session.get("sent") == _sent_marker(token)
    if sent:
        request.session.pop("sent")
    with transaction(ctx.sessions) as session:
        ticket = _ticket_for(session, token)
        if ticket is None:
            raise TicketNotFound()
        events = timeline(session=session, ticket_id=saved_id(ticket), public_only=True)
        return render(
            request,
            "ticket_public.html",
            ticket=ticket,
            incident=incident_of(session=session, ticket=ticket),
            events=events,
            sent=sent,
            help=STATUS_HELP.get(ticket.status),
        )


@router.post("/t/{token}", response_model=None)
def ticket_details(
    request: Request,
    token: str,
    csrf: Annotated[str, Form()] = "",
    order_number: Annotated[str, Form()] = "",
    details: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    consent: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    if not csrf_ok(request, csrf):
        return render(request, "error.html", status_code=403, message="This form expired. Please reload the page.")
    check(ctx.sessions, ctx.secret_key, [("submit-client", client_key(request), ctx.limits.submit_per_client)])
    with transaction(ctx.sessions) as session:
        ticket = _ticket_for(session, token)
        if ticket is None:
            raise TicketNotFound()
        errors = _field_errors(email=email.strip(), details=details, order_number=order_number.strip())
        if email.strip() and not consent and ticket.author_handle:
            errors.append(
                "To continue by email, tick the box that links your handle to this address (or leave the email empty)."
            )
        if not (order_number.strip() or details.strip() or email.strip()):
            errors.append("The form is empty: add an order number, a description or an email address.")
        if errors:
            events = timeline(session=session, ticket_id=saved_id(ticket), public_only=True)
            # The customer's input is not echoed back: the page stays write-only even on an error.
            return render(
                request,
                "ticket_public.html",
                status_code=422,
                ticket=ticket,
                events=events,
                errors=errors,
                help=STATUS_HELP.get(ticket.status),
            )
        add_customer_details(
            session=session,
            ticket=ticket,
            order_number=order_number.strip(),
            details=details.strip(),
            email=email.strip(),
            consent=bool(consent) or not ticket.author_handle,
        )
    request.session["sent"] = _sent_marker(token)
    return RedirectResponse(f"/t/{token}", status_code=303)


@router.get("/contact", response_class=HTMLResponse)
def contact_form(request: Request) -> HTMLResponse:
    return render(request, "contact.html")


@router.post("/contact", response_class=HTMLResponse)
def contact_submit(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> HTMLResponse:
    ctx = _ctx(request)
    if not csrf_ok(request, csrf):
        return render(request, "error.html", status_code=403, message="This form expired. Please reload the page.")
    check(ctx.sessions, ctx.secret_key, [("contact-client", client_key(request), ctx.limits.contact_per_client)])
    errors = _field_errors(email=email.strip(), details=description, email_required=True)
    if not description.strip():
        errors.append("Please tell us what happened.")
    if len(subject) > MAX_SUBJECT:
        errors.append(f"Please keep the subject under {MAX_SUBJECT} characters.")
    if errors:
        return render(
            request,
            "contact.html",
            status_code=422,
            errors=errors,
            email=email,
            subject=subject,
            description=description,
        )
    verdict = ctx.classify([f"{subject}\n{description}"])[0]
    with transaction(ctx.sessions) as session:
        ticket, token = open_web_ticket(
            session=session, email=email.strip(), subject=subject, description=description.strip(), verdict=verdict
        )
        ref = ticket.ref
    return render(request, "contact_done.html", ref=ref, link=f"{ctx.public_url}/t/{token}")


@router.get("/sample", response_class=HTMLResponse)
def sample_platform(request: Request) -> HTMLResponse:
    """The built-in sample platform, as its public would see it: posts and the replies fairdesk 'sent'."""
    ctx = _ctx(request)
    if ctx.sample_replies is None or ctx.sample_posts is None:
        raise TicketNotFound()
    link = re.compile(re.escape(f"{ctx.public_url}/t/") + r"([A-Za-z0-9_-]+)")
    replies = {r["in_reply_to"]: r | {"parts": _reply_parts(str(r["text"]), link)} for r in ctx.sample_replies()}
    return render(request, "sample.html", posts=ctx.sample_posts(), replies=replies)


def _reply_parts(text: str, link: re.Pattern[str]) -> list[tuple[str, str | None]]:
    """A reply cut around its ticket links: (text, None) for plain text, (link text, "/t/TOKEN") for a link. The
    template escapes both; the href is this site's page for the token, never anything else taken from the text."""
    parts: list[tuple[str, str | None]] = []
    end = 0
    for match in link.finditer(text):
        parts += [(text[end : match.start()], None), (match.group(0), f"/t/{match.group(1)}")]
        end = match.end()
    return [*parts, (text[end:], None)]
