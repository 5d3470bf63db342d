"""The agents' pages: login, the one queue for every channel, and the ticket view with its actions."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from fairdesk.ticketing.categories import CATEGORIES
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.incident_desk import incident_of, open_incidents
from fairdesk.ticketing.incidents import rules_of
from fairdesk.ticketing.mail import deliver
from fairdesk.ticketing.models import Agent, Channel, EntryKind, MailOutbox, MailState, Status, Ticket
from fairdesk.ticketing.store import (
    EMAIL_ENTRY,
    QueueFilter,
    add_note,
    assign,
    deliveries_of,
    mail_by_entry,
    pseudonym,
    queue,
    queue_email,
    reveal_handle,
    revealed_ticket_ids,
    set_status,
    timeline,
)
from fairdesk.ticketing.web.agent_incidents import router as incidents_router
from fairdesk.ticketing.web.auth import current_agent
from fairdesk.ticketing.web.pages import TicketNotFound, WebContext, csrf_ok, render, row_id

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/agent")
router.include_router(incidents_router)

MAX_NOTE = 10_000
MAX_EMAIL_BODY = 20_000
MAX_SEARCH = 200
SEVERITIES = (4, 3, 2, 1)
THREAD_KINDS = (EntryKind.POST,)


def _ctx(request: Request) -> WebContext:
    return request.app.state.ctx


def _login_redirect() -> RedirectResponse:
    return RedirectResponse("/agent/login", status_code=303)


def shown_handle(ticket: Ticket, *, blind: bool, revealed: bool) -> str:
    """Who the customer is, as an agent sees it: a pseudonym under blind triage until the agent reveals the handle."""
    if not ticket.author_handle:
        return ticket.contact_email or "(web form)"
    if blind and not revealed:
        return pseudonym(ticket)
    return "@" + ticket.author_handle


@router.get("", response_class=HTMLResponse, response_model=None)
def queue_page(
    request: Request,
    status: str = "active",
    channel: str = "",
    platform: str = "",
    category: str = "",
    severity: str = "",
    q: str = "",
) -> Response:
    if (agent := current_agent(request)) is None:
        return _login_redirect()
    ctx = _ctx(request)
    filters = QueueFilter(
        status=status[:16] or None,
        channel=channel[:16] or None,
        platform=platform[:32] or None,
        severity=int(severity) if severity in ("1", "2", "3", "4") else None,
        search=q.strip()[:MAX_SEARCH] or None,
        category=category[:24] or None,
    )
    with transaction(ctx.sessions) as session:
        tickets = queue(session=session, filters=filters)
        incidents = open_incidents(session=session, min_reporters=rules_of(session).min_reporters)
        revealed = revealed_ticket_ids(session=session, agent=agent, ticket_ids=[t.id for t in tickets if t.id])
        rows = [(t, shown_handle(t, blind=ctx.blind_triage, revealed=t.id in revealed)) for t in tickets]
        ids = [t.id for t in tickets]
        not_sent = MailOutbox.state != MailState.SENT
        unsent = set(session.exec(select(MailOutbox.ticket_id).where(col(MailOutbox.ticket_id).in_(ids), not_sent)))
        platforms = sorted(
            {p for p in session.exec(select(Ticket.platform).distinct()) if p} | {p for p, _ in ctx.accounts}
        )
        return render(
            request,
            "queue.html",
            agent=agent,
            rows=rows,
            incidents=incidents,
            unsent=unsent,
            filters=filters,
            statuses=list(Status),
            channels=list(Channel),
            platforms=platforms,
            categories=CATEGORIES,
            severities=SEVERITIES,
        )


def _ticket_id(raw: str) -> int:
    ticket_id = row_id(raw)
    if ticket_id is None:
        raise TicketNotFound()
    return ticket_id


def _load(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound()
    return ticket


@router.get("/tickets/{raw_id}", response_class=HTMLResponse, response_model=None)
def ticket_view(request: Request, raw_id: str) -> Response:
    if (agent := current_agent(request)) is None:
        return _login_redirect()
    ticket_id = _ticket_id(raw_id)
    ctx = _ctx(request)
    with transaction(ctx.sessions) as session:
        ticket = _load(session, ticket_id)
        revealed = ticket_id in revealed_ticket_ids(session=session, agent=agent, ticket_ids=[ticket_id])
        agents = [a.name for a in session.exec(select(Agent).order_by(col(Agent.name)))]
        events = timeline(session=session, ticket_id=ticket_id, public_only=False)
        return render(
            request,
            "ticket_agent.html",
            agent=agent,
            ticket=ticket,
            incident=incident_of(session=session, ticket=ticket),
            handle=shown_handle(ticket, blind=ctx.blind_triage, revealed=revealed),
            can_reveal=bool(ticket.author_handle) and ctx.blind_triage and not revealed,
            events=events,
            thread=[e for e in events if e.kind in THREAD_KINDS],
            details=[e for e in events if e.kind == EntryKind.CUSTOMER_DETAILS],
            mails=mail_by_entry(session=session, ticket_id=ticket_id),
            deliveries=deliveries_of(session=session, ticket_id=ticket_id),
            email_kind=EMAIL_ENTRY,
            mail_on=ctx.mail is not None,
            statuses=list(Status),
            agents=agents,
            flash=request.session.pop("flash", None),
        )


@router.post("/tickets/{raw_id}", response_model=None)
def ticket_action(
    request: Request,
    raw_id: str,
    csrf: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
    mail_id: Annotated[int, Form()] = 0,
) -> Response:
    if (agent := current_agent(request)) is None:
        return _login_redirect()
    ticket_id = _ticket_id(raw_id)
    if not csrf_ok(request, csrf):
        return render(request, "error.html", status_code=403, message="This form expired. Please reload the page.")
    ctx = _ctx(request)
    to_send: int | None = None
    with transaction(ctx.sessions) as session:
        ticket = _load(session, ticket_id)
        if action == "status" and status in Status.__members__.values():
            set_status(session=session, ticket=ticket, status=status, actor=agent, by_agent=True)
        elif action == "note" and note.strip() and len(note) <= MAX_NOTE:
            add_note(session=session, ticket=ticket, body=note.strip(), actor=agent)
        elif action == "assign":
            if assignee and session.get(Agent, assignee[:64]) is None:
                return render(request, "error.html", status_code=400, message="No such agent.")
            assign(session=session, ticket=ticket, agent=assignee[:64] or None, actor=agent)
        elif action == "reveal":
            reveal_handle(session=session, ticket=ticket, agent=agent)
        elif action == "email" and message.strip() and len(message) <= MAX_EMAIL_BODY and ticket.contact_email:
            # The intent is committed before the send, so a failed or interrupted send stays visible on the ticket.
            to_send = queue_email(session=session, ticket=ticket, body=message.strip(), actor=agent).id
        elif action == "retry":
            row = session.get(MailOutbox, mail_id) if row_id(mail_id) else None
            if row is None or row.ticket_id != ticket_id or row.state == MailState.SENT:
                return render(request, "error.html", status_code=400, message="Nothing to retry.")
            to_send = row.id
        else:
            return render(request, "error.html", status_code=400, message="Nothing to do: check the form.")
    if to_send is not None:
        result = deliver(sessions=ctx.sessions, mail_id=to_send, config=ctx.mail)
        # Only the outcome goes into the (readable) session cookie; the address and error stay in the database.
        request.session["flash"] = "mail-sent" if result.state == MailState.SENT else "mail-failed"
    return RedirectResponse(f"/agent/tickets/{ticket_id}", status_code=303)
