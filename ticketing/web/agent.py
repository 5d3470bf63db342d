"""The agents' pages: login, the one queue for every channel, and the ticket view with its actions."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, select

from ticketing.agents import authenticate
from ticketing.db import transaction
from ticketing.models import Agent, Channel, Status, Ticket
from ticketing.store import QueueFilter, add_note, assign, log_reveal, pseudonym, queue, set_status, timeline
from ticketing.web.app import TicketNotFound, WebContext, csrf_ok, render

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/agent")


def _ctx(request: Request) -> WebContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def _agent(request: Request) -> str | None:
    name = request.session.get("agent")
    return str(name) if name else None


def _login_redirect() -> RedirectResponse:
    return RedirectResponse("/agent/login", status_code=303)


def _shown_handle(request: Request, ticket: Ticket) -> str:
    if not ticket.author_handle:
        return ticket.contact_email or "(web form)"
    revealed = request.session.get("revealed", [])
    if _ctx(request).blind_triage and ticket.id not in revealed:
        return pseudonym(ticket)
    return "@" + ticket.author_handle


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html")


@router.post("/login", response_model=None)
def login(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    if not csrf_ok(request, csrf):
        return render(request, "login.html", status_code=403, error="This form expired. Please try again.")
    with transaction(_ctx(request).sessions) as session:
        agent = authenticate(session=session, name=name[:64], password=password[:1024])
    if agent is None:
        logger.info("failed agent login for %r", name[:64])
        return render(request, "login.html", status_code=401, error="Wrong name or password, or the account is locked.")
    request.session.clear()
    request.session["agent"] = agent.name
    return RedirectResponse("/agent", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> RedirectResponse:
    if csrf_ok(request, csrf):
        request.session.clear()
    return _login_redirect()


@router.get("", response_class=HTMLResponse, response_model=None)
def queue_page(
    request: Request,
    status: str = "active",
    channel: str = "",
    platform: str = "",
    severity: str = "",
    q: str = "",
) -> Response:
    if (agent := _agent(request)) is None:
        return _login_redirect()
    filters = QueueFilter(
        status=status or None,
        channel=channel or None,
        platform=platform or None,
        severity=int(severity) if severity.isdigit() else None,
        search=q.strip()[:200] or None,
    )
    with transaction(_ctx(request).sessions) as session:
        tickets = queue(session=session, filters=filters)
        rows = [(t, _shown_handle(request, t)) for t in tickets]
        return render(
            request,
            "queue.html",
            agent=agent,
            rows=rows,
            filters=filters,
            statuses=list(Status),
            channels=list(Channel),
        )


def _load(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound()
    return ticket


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse, response_model=None)
def ticket_view(request: Request, ticket_id: int) -> Response:
    if (agent := _agent(request)) is None:
        return _login_redirect()
    with transaction(_ctx(request).sessions) as session:
        ticket = _load(session, ticket_id)
        agents = [a.name for a in session.exec(select(Agent).order_by(Agent.name))]
        return render(
            request,
            "ticket_agent.html",
            agent=agent,
            ticket=ticket,
            handle=_shown_handle(request, ticket),
            events=timeline(session=session, ticket_id=ticket_id, public_only=False),
            statuses=list(Status),
            agents=agents,
        )


@router.post("/tickets/{ticket_id}", response_model=None)
def ticket_action(
    request: Request,
    ticket_id: int,
    csrf: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
) -> Response:
    if (agent := _agent(request)) is None:
        return _login_redirect()
    if not csrf_ok(request, csrf):
        return render(request, "error.html", status_code=403, message="This form expired. Please reload the page.")
    with transaction(_ctx(request).sessions) as session:
        ticket = _load(session, ticket_id)
        if action == "status" and status in Status.__members__.values():
            set_status(session=session, ticket=ticket, status=status, actor=agent)
        elif action == "note" and note.strip():
            add_note(session=session, ticket=ticket, body=note.strip()[:10000], actor=agent)
        elif action == "assign":
            assign(session=session, ticket=ticket, agent=assignee[:64] or None, actor=agent)
        elif action == "reveal":
            log_reveal(session=session, ticket=ticket, actor=agent)
            revealed = list(request.session.get("revealed", []))
            request.session["revealed"] = [*revealed[-50:], ticket_id]
        else:
            return render(request, "error.html", status_code=400, message="Unknown action.")
    return RedirectResponse(f"/agent/tickets/{ticket_id}", status_code=303)
