"""The agents' incident pages over HTTP: listed in the queue with reporters, one status for every reporter's page,
split logged, pseudonyms only, hostile text escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from bs4 import BeautifulSoup
from sqlmodel import select

from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import Incident, Ticket, TicketEntry
from fairdesk.ticketing.store import pseudonym
from tests.support import mention
from tests.web.conftest import LINK, Site, csrf_of

OUTAGE = {
    "21": ("loud_celebrity", "@brand internet down in Leeds <script>window.pwned=3</script> nothing loads"),
    "22": ("quiet_reader", "@brand is the internet down? nothing loads here in Leeds"),
    "23": ("third_person", "@brand internet down again in Leeds, nothing loads"),
}


def _outage(site: Site) -> tuple[int, dict[str, str]]:
    """Three reporters of one outage on the site; returns the incident id and each post's link token."""
    now = datetime.now(UTC)
    for n, (pid, (handle, text)) in enumerate(OUTAGE.items()):
        site.adapter.mentions.append(
            mention(pid, text, author_handle=handle, created_at=now - timedelta(minutes=9 - n))
        )
    site.daemon.poll_all()
    while site.daemon.send_replies():
        pass
    tokens = {}
    for reply in site.adapter.posted:
        found = LINK.search(reply.text)
        assert found is not None, reply.text
        tokens[reply.in_reply_to.post_id] = found.group(1)
    with transaction(site.daemon.sessions) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.id is not None
        return incident.id, {pid: tokens[pid] for pid in OUTAGE}


def _soup(response: httpx.Response) -> BeautifulSoup:
    assert response.status_code == 200, response.text[:300]
    return BeautifulSoup(response.text, "html.parser")


def test_queue_lists_the_incident_with_its_reporters_and_the_page_shows_pseudonyms_only(site: Site) -> None:
    incident_id, _ = _outage(site)
    with site.client() as client:
        site.login(client)
        queue = _soup(client.get("/agent"))
        (row,) = queue.select("#incidents tr.incident-row")
        assert row.select_one("td.reporters").text == "3"
        assert row.select_one("a")["href"] == f"/agent/incidents/{incident_id}"
        tags = {a["href"] for a in queue.select("tr.ticket-row a.tag.incident")}
        assert tags == {f"/agent/incidents/{incident_id}"} and len(queue.select("tr.ticket-row a.tag.incident")) == 3
        # Revealing a handle on one ticket does not carry over to the incident page: a crowd has no names there.
        loud = site.ticket("21")
        page = client.get(f"/agent/tickets/{loud.id}")
        why = _soup(page).select_one("#incident")
        assert why is not None and why.select_one("a")["href"] == f"/agent/incidents/{incident_id}"
        assert "3 reporters" in why.text and "same category 'outage'" in why.text
        client.post(f"/agent/tickets/{loud.id}", data={"csrf": csrf_of(page.text), "action": "reveal"})
        html = client.get(f"/agent/incidents/{incident_id}").text
        soup = _soup(client.get(f"/agent/incidents/{incident_id}"))
    assert soup.select_one("#reporters").text.startswith("3 ")
    shown = [td.text for td in soup.select("#incident-tickets td.who")]
    assert shown == [pseudonym(site.ticket(pid)) for pid in OUTAGE]
    for handle, _ in OUTAGE.values():
        assert handle not in html
    reasons = [td.text for td in soup.select("#incident-tickets td.why")]
    assert all("same category 'outage'" in r for r in reasons)
    # The hostile first report (shown in full) is text on the page, never markup.
    assert "<script>window.pwned=3</script>" not in html and "&lt;script&gt;window.pwned=3" in html
    assert not soup.select("script")


def test_a_status_set_on_the_incident_reaches_every_reporters_page(site: Site) -> None:
    incident_id, tokens = _outage(site)
    with site.client() as customer:
        before = _soup(customer.get(f"/t/{tokens['22']}"))
        assert "new" in before.select_one("#incident-status").text
    with site.client() as client:
        site.login(client)
        page = client.get(f"/agent/incidents/{incident_id}")
        done = client.post(
            f"/agent/incidents/{incident_id}", data={"csrf": csrf_of(page.text), "action": "status", "status": "solved"}
        )
        assert _soup(done).select_one("#flash").text.startswith("Status set on the incident and on 3 reporter tickets")
    with site.client() as customer:
        for pid, token in tokens.items():
            soup = _soup(customer.get(f"/t/{token}"))
            assert soup.select_one("#status").text == "solved", pid
            assert soup.select_one("#incident-status strong").text == "solved"
            assert "Status: solved" in soup.select_one("#timeline").text
    unrelated = site.ticket("2")
    assert unrelated.status == "new"  # a ticket outside the incident is untouched


def test_split_from_the_page_is_logged_and_stops_counting(site: Site) -> None:
    incident_id, tokens = _outage(site)
    wrong = site.ticket("23")
    with site.client() as client:
        site.login(client)
        page = client.get(f"/agent/incidents/{incident_id}")
        done = client.post(
            f"/agent/incidents/{incident_id}",
            data={"csrf": csrf_of(page.text), "action": "split", "ticket_id": str(wrong.id)},
        )
        soup = _soup(done)
        assert soup.select_one("#reporters").text.startswith("2 ")
        assert [a.text for a in soup.select("#incident-tickets td a")] == [site.ticket(p).ref for p in ("21", "22")]
        ticket_page = _soup(client.get(f"/agent/tickets/{wrong.id}"))
        timeline = ticket_page.select_one("#timeline").text
        assert f"Split out of incident IN-{incident_id:05d} by alex" in timeline
        # Another incident's ticket, or a CSRF-less form, changes nothing.
        bad = client.post(
            f"/agent/incidents/{incident_id}",
            data={"csrf": csrf_of(page.text), "action": "split", "ticket_id": str(wrong.id)},
        )
        assert bad.status_code == 400
        assert (
            client.post(f"/agent/incidents/{incident_id}", data={"action": "status", "status": "closed"}).status_code
            == 403
        )
    with site.client() as customer:
        assert _soup(customer.get(f"/t/{tokens['23']}")).select_one("#incident-status") is None
    with transaction(site.daemon.sessions) as session:
        assert session.exec(select(Incident)).one().status == "new"
        split_log = session.exec(
            select(TicketEntry).where(TicketEntry.ticket_id == wrong.id, TicketEntry.actor == "alex")
        )
        assert len(split_log.all()) == 1
        assert session.exec(select(Ticket.incident_id).where(Ticket.id == wrong.id)).one() is None


def test_incident_pages_need_an_agent_and_unknown_ids_are_404(site: Site) -> None:
    incident_id, _ = _outage(site)
    with site.client() as anonymous:
        assert anonymous.get(f"/agent/incidents/{incident_id}").url.path == "/agent/login"
    with site.client() as client:
        site.login(client)
        for raw in ("999999", "0", "abc", "99999999999"):
            assert client.get(f"/agent/incidents/{raw}").status_code == 404, raw
