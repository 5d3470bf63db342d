"""The customer's link page over HTTP: write-only details, consent, limits, CSRF, rate limits kept in the database."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup
from sqlmodel import select

from fairdesk.app import build
from fairdesk.ticketing.db import make_engine, transaction
from fairdesk.ticketing.models import RateCounter, TicketEntry
from fairdesk.ticketing.store import count_hit, purge_counters
from fairdesk.ticketing.web.limits import Limit, RateLimits
from tests.support import fake_classify, free_port
from tests.web.conftest import Site, WebServer, csrf_of

DETAIL = "order 77 arrived smashed, box crushed"


def _entries(site: Site, ticket_id: int, kind: str) -> list[TicketEntry]:
    with transaction(site.daemon.sessions) as session:
        rows = session.exec(select(TicketEntry).where(TicketEntry.ticket_id == ticket_id, TicketEntry.kind == kind))
        return list(rows)


def test_details_are_added_for_agents_and_never_shown_back(site: Site) -> None:
    token = site.tokens["1"]
    with site.client() as client:
        page = client.get(f"/t/{token}")
        sent = client.post(
            f"/t/{token}",
            data={
                "csrf": csrf_of(page.text),
                "order_number": "A-77",
                "details": DETAIL,
                "email": "pat@example.com",
                "consent": "yes",
            },
        )
        soup = BeautifulSoup(sent.text, "html.parser")
        assert sent.status_code == 200 and soup.select_one("#confirmation") is not None
        assert DETAIL not in sent.text and "pat@example.com" not in sent.text and "A-77" not in sent.text
        again = client.get(f"/t/{token}")  # the confirmation is shown once
        assert BeautifulSoup(again.text, "html.parser").select_one("#confirmation") is None
    ticket = site.ticket("1")
    [entry] = _entries(site, ticket.id, "customer_details")  # type: ignore[arg-type]
    assert "A-77" in entry.body and DETAIL in entry.body and not entry.public
    assert ticket.contact_email == "pat@example.com"


def test_a_confirmation_cannot_be_faked_with_a_query_string(site: Site) -> None:
    with site.client() as client:
        html = client.get(f"/t/{site.tokens['1']}?sent=1").text
    assert BeautifulSoup(html, "html.parser").select_one("#confirmation") is None


def test_an_email_needs_consent_to_link_the_handle(site: Site) -> None:
    token = site.tokens["2"]
    with site.client() as client:
        page = client.get(f"/t/{token}")
        refused = client.post(
            f"/t/{token}", data={"csrf": csrf_of(page.text), "email": "pat@example.com", "details": DETAIL}
        )
    assert refused.status_code == 422 and "tick the box" in refused.text
    assert DETAIL not in refused.text and "pat@example.com" not in refused.text  # not echoed, even on an error
    ticket = site.ticket("2")
    assert ticket.contact_email is None and not _entries(site, ticket.id, "customer_details")  # type: ignore[arg-type]


def test_oversized_and_empty_submissions_are_refused(site: Site) -> None:
    token = site.tokens["3"]
    with site.client() as client:
        csrf = csrf_of(client.get(f"/t/{token}").text)
        too_long = client.post(f"/t/{token}", data={"csrf": csrf, "details": "x" * 5001})
        bad_order = client.post(f"/t/{token}", data={"csrf": csrf, "order_number": "9" * 65})
        empty = client.post(f"/t/{token}", data={"csrf": csrf})
    assert [r.status_code for r in (too_long, bad_order, empty)] == [422, 422, 422]
    assert not _entries(site, site.ticket("3").id, "customer_details")  # type: ignore[arg-type]


def test_posts_without_a_valid_csrf_token_are_refused(site: Site) -> None:
    token = site.tokens["1"]
    with site.client() as client:
        client.get(f"/t/{token}")  # has a session, but does not send its token
        missing = client.post(f"/t/{token}", data={"details": DETAIL})
        wrong = client.post(f"/t/{token}", data={"details": DETAIL, "csrf": "forged"})
    assert missing.status_code == 403 and wrong.status_code == 403
    assert not _entries(site, site.ticket("1").id, "customer_details")  # type: ignore[arg-type]


def test_views_and_submissions_are_rate_limited_per_client(site: Site) -> None:
    ctx = site.daemon.web_app.state.ctx
    ctx.limits = RateLimits(view_per_client=Limit(3, 3600))
    with site.client() as client:
        codes = [client.get(f"/t/{site.tokens['1']}").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = client.get(f"/t/{site.tokens['1']}")
        assert int(limited.headers["retry-after"]) > 0
        assert client.get(f"/t/{site.tokens['2']}").status_code == 429  # the limit is the client's, on every link
    ctx.limits = RateLimits(submit_per_client=Limit(1, 3600))
    with site.client() as client:
        csrf = csrf_of(client.get(f"/t/{site.tokens['3']}").text)
        first = client.post(f"/t/{site.tokens['3']}", data={"csrf": csrf, "details": "one"})
        second = client.post(f"/t/{site.tokens['3']}", data={"csrf": csrf, "details": "two"})
    assert first.status_code == 200 and second.status_code == 429
    assert len(_entries(site, site.ticket("3").id, "customer_details")) == 1  # type: ignore[arg-type]
    with transaction(site.daemon.sessions) as session:
        buckets = [c.bucket for c in session.exec(select(RateCounter))]
    assert buckets and not any(site.tokens["1"] in b or "127.0.0.1" in b for b in buckets)  # hashes only


def test_rate_limits_are_shared_by_daemons_on_one_database(site: Site, tmp_path: Path, db_url: str) -> None:
    second = build(
        site.daemon.settings.model_copy(update={"data_dir": tmp_path / "second"}),
        adapters={},
        classify=fake_classify,
        engine=make_engine(db_url),
    )
    limits = RateLimits(view_per_client=Limit(2, 3600))
    site.daemon.web_app.state.ctx.limits = limits
    second.web_app.state.ctx.limits = limits
    try:
        with WebServer(second.web_app, free_port()) as other:
            with site.client() as client:
                assert client.get(f"/t/{site.tokens['4']}").status_code == 200
                assert client.get(f"{other}/t/{site.tokens['4']}").status_code == 200
                assert client.get(f"{other}/t/{site.tokens['4']}").status_code == 429
                assert client.get(f"/t/{site.tokens['4']}").status_code == 429
    finally:
        second.close()


def test_unknown_and_malformed_links_get_the_ordinary_404(site: Site) -> None:
    with site.client() as client:
        missing = client.get("/no-such-page")
        for path in ("/t/" + "B" * 22, "/t/" + site.tokens["1"][:-1] + "x", "/t/..%2F..", "/t/" + "é" * 30):
            response = client.get(path)
            assert response.status_code == 404 and response.text == missing.text


def test_the_link_page_is_locked_down(site: Site) -> None:
    with site.client() as client:
        response = client.get(f"/t/{site.tokens['1']}")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert response.headers["referrer-policy"] == "same-origin"  # the token in the URL never reaches another site
    assert response.headers["cache-control"] == "no-store"
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.find("script") is None and soup.find(attrs={"style": True}) is None
    hosts = [tag.get("href") or tag.get("src") for tag in soup.find_all(["link", "img", "script", "iframe"])]
    assert all(str(h).startswith(("/", "data:")) for h in hosts)  # no external assets
    labelled = {str(label["for"]) for label in soup.find_all("label")}
    fields = [f for f in soup.select("form input, form textarea") if f.get("type") != "hidden"]
    assert fields and all(f.get("id") in labelled for f in fields)


def test_a_script_sent_in_the_form_stays_text_for_the_agent(site: Site) -> None:
    hostile = "<script>alert(1)</script><b onmouseover=alert(2)>x</b>"
    token = site.tokens["2"]
    with site.client() as client:
        csrf = csrf_of(client.get(f"/t/{token}").text)
        assert client.post(f"/t/{token}", data={"csrf": csrf, "details": hostile}).status_code == 200
        site.login(client)
        view = client.get(f"/agent/tickets/{site.ticket('2').id}")
    soup = BeautifulSoup(view.text, "html.parser")
    assert soup.find("script") is None and soup.find("b") is None
    assert hostile in soup.select_one("#details").text


def test_oversized_bodies_are_refused_before_parsing(site: Site) -> None:
    token = site.tokens["1"]
    with site.client() as client:
        csrf = csrf_of(client.get(f"/t/{token}").text)
        huge = client.post(f"/t/{token}", data={"csrf": csrf, "details": "x" * 300_000})
    assert huge.status_code == 413
    assert not _entries(site, site.ticket("1").id, "customer_details")  # type: ignore[arg-type]


def test_ended_rate_windows_are_purged(site: Site) -> None:
    with transaction(site.daemon.sessions) as session:
        assert [count_hit(session=session, bucket="b", started=s) for s in (100, 100, 5000)] == [1, 2, 1]
        purge_counters(session=session, before=1000)
    with transaction(site.daemon.sessions) as session:
        rows = session.exec(select(RateCounter).where(RateCounter.bucket == "b"))
        left = [(c.bucket, c.started, c.hits) for c in rows]
    assert left == [("b", 5000, 1)]
