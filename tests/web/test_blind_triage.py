"""Blind triage holds everywhere an agent sees a customer: every agent page, search, and what helpdesks are sent."""

from __future__ import annotations

import httpx
from bs4 import BeautifulSoup

from fairdesk.jobs.deliveries import FilingPolicy, filing_for
from fairdesk.ticketing.store import pseudonym
from tests.support import mention
from tests.web.conftest import Site, csrf_of

HANDLE = "famous_person"  # the author of post "1" on the site fixture


def _with_followup(site: Site) -> int:
    root = site.ticket("1")
    site.adapter.mentions.append(
        mention(
            "9",
            "@brand still broken today, any news?",
            author_id=root.author_id,
            author_handle=HANDLE,
            reply_to_id="1",
            conversation_id=root.conversation_id,
        )
    )
    site.daemon.poll_all()
    assert root.id is not None
    return root.id


def _agent_pages(client: httpx.Client, ticket_id: int) -> dict[str, str]:
    pages = {
        "queue": "/agent",
        "queue, all statuses": "/agent?status=",
        "search by handle": f"/agent?status=&q={HANDLE}",
        "search by @handle": f"/agent?status=&q=%40{HANDLE}",
        "ticket": f"/agent/tickets/{ticket_id}",
        "dashboard": "/agent/dashboard",
    }
    out = {}
    for name, path in pages.items():
        response = client.get(path)
        assert response.status_code == 200, name
        soup = BeautifulSoup(response.text, "html.parser")
        for typed in soup.select("input#f-q"):  # the agent's own search words, echoed back
            typed.decompose()
        out[name] = str(soup)
    return out


def test_no_agent_page_shows_the_handle_of_a_customer_with_follow_ups_until_it_is_revealed(site: Site) -> None:
    ticket_id = _with_followup(site)
    ticket = site.ticket("1")
    with site.client() as client:
        site.login(client)
        pages = _agent_pages(client, ticket_id)
        assert "still broken today" in pages["ticket"]  # the follow-up is on the ticket...
        assert pseudonym(ticket) in pages["ticket"]
        leaks = [name for name, html in pages.items() if HANDLE in html]
        assert leaks == []  # ...but the handle is nowhere
        # Searching by the handle finds nothing, so it cannot tell an agent whose ticket this is.
        assert ticket.ref not in pages["search by handle"]

        page = client.get(f"/agent/tickets/{ticket_id}")
        client.post(f"/agent/tickets/{ticket_id}", data={"csrf": csrf_of(page.text), "action": "reveal"})
        revealed = client.get(f"/agent/tickets/{ticket_id}").text
        assert f"@{HANDLE}" in revealed  # the logged reveal shows it, on this ticket, to this agent


def test_helpdesks_are_told_the_pseudonym_and_no_link_that_names_the_customer(site: Site) -> None:
    _with_followup(site)
    ticket = site.ticket("1")
    ticket.post_url = f"https://x.com/{HANDLE}/status/1"  # platforms' post links carry the author's handle
    filing = filing_for(ticket, FilingPolicy(public_url=site.base, blind_triage=True))
    assert HANDLE not in filing.describe()
    assert HANDLE not in repr(filing)
    assert filing.customer == pseudonym(ticket)
