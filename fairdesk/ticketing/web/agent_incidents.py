"""The agents' incident page: its reporters' tickets (pseudonyms only), one status for all, splitting a ticket out."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.incident_desk import NotInIncident, incident_tickets, set_incident_status, split_ticket
from fairdesk.ticketing.incidents import rules_of, window_words
from fairdesk.ticketing.models import Incident, Status, Ticket
from fairdesk.ticketing.store import pseudonym
from fairdesk.ticketing.web.auth import current_agent
from fairdesk.ticketing.web.pages import TicketNotFound, WebContext, csrf_ok, render, row_id

logger = logging.getLogger(__name__)
router = APIRouter()  # included by the agent router, under /agent


def _ctx(request: Request) -> WebContext:
    return request.app.state.ctx


def _incident_id(raw: str) -> int:
    incident_id = row_id(raw)
    if incident_id is None:
        raise TicketNotFound()
    return incident_id


@router.get("/incidents/{raw_id}", response_class=HTMLResponse, response_model=None)
def incident_view(request: Request, raw_id: str) -> Response:
    if (agent := current_agent(request)) is None:
        return RedirectResponse("/agent/login", status_code=303)
    incident_id = _incident_id(raw_id)
    ctx = _ctx(request)
    with transaction(ctx.sessions) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise TicketNotFound()
        tickets = incident_tickets(session=session, incident_id=incident_id)
        rules = rules_of(session)
        # Pseudonyms only, whatever was revealed on a ticket: a crowd is worked by what it reports, not by who.
        rows = [(t, pseudonym(t)) for t in tickets]
        return render(
            request,
            "incident.html",
            agent=agent,
            incident=incident,
            rows=rows,
            statuses=list(Status),
            window=window_words(rules.window),
            threshold=rules.threshold,
            flash=request.session.pop("flash", None),
        )


@router.post("/incidents/{raw_id}", response_model=None)
def incident_action(
    request: Request,
    raw_id: str,
    csrf: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    ticket_id: Annotated[str, Form()] = "",
) -> Response:
    if (agent := current_agent(request)) is None:
        return RedirectResponse("/agent/login", status_code=303)
    incident_id = _incident_id(raw_id)
    if not csrf_ok(request, csrf):
        return render(request, "error.html", status_code=403, message="This form expired. Please reload the page.")
    ctx = _ctx(request)
    with transaction(ctx.sessions) as session:
        incident = session.get(Incident, incident_id, with_for_update=True)
        if incident is None:
            raise TicketNotFound()
        if action == "status" and status in Status.__members__.values():
            changed = set_incident_status(session=session, incident=incident, status=status, actor=agent)
            request.session["flash"] = f"status-{changed}"
        elif action == "split" and (member_id := row_id(ticket_id)) is not None:
            ticket = session.get(Ticket, member_id)
            if ticket is None:
                return render(request, "error.html", status_code=400, message="No such ticket.")
            try:
                split_ticket(session=session, incident=incident, ticket=ticket, actor=agent)
            except NotInIncident:
                return render(request, "error.html", status_code=400, message="That ticket is not in this incident.")
            request.session["flash"] = "split"
        else:
            return render(request, "error.html", status_code=400, message="Nothing to do: check the form.")
    return RedirectResponse(f"/agent/incidents/{incident_id}", status_code=303)
