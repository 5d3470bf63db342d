"""The zammad kind against the contract-faithful fake Zammad: one ticket per complaint, across crashes and faults."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from fairdesk.app import Daemon, build
from fairdesk.config.helpdesks import ZammadHelpdesk as ZammadSettings
from fairdesk.config.settings import SampleAccount, Settings
from fairdesk.helpdesk.base import Filing
from fairdesk.jobs.deliveries import deliver_due
from fairdesk.ticketing.db import make_engine, transaction
from fairdesk.ticketing.models import DeliveryState, HelpdeskDelivery, LedgerEntry, Ticket, utcnow
from tests.fakes.zammad_server import FakeZammadServer, Fault
from tests.helpdesk.support import KilledOnCreate, drain
from tests.support import SimulatedCrash, fake_classify

LINK = re.compile(r"/t/([A-Za-z0-9_-]{22,})")
REACH_WORDS = ("follower", "verified", "metric", "influence", "impression", "like_count", "retweet", "reach")
REF = re.compile(r"^\[(FD-\d{6})\] ")


@pytest.fixture
def zammad() -> Iterator[FakeZammadServer]:
    """A fake Zammad on 127.0.0.1 whose Elasticsearch never catches up: a query search finds nothing new.

    Example: ``zammad.set_state(1, "closed")``; ``zammad.inject("ticket_create", Fault.error(503))``
    """
    with FakeZammadServer(search_lag=float("inf")) as server:
        yield server


def _daemon(tmp_path: Path, zammad: FakeZammadServer, *, per_poll: int = 20, **changes: object) -> Daemon:
    values: dict[str, object] = dict(
        kind="zammad",
        url=zammad.url,
        token=zammad.token,
        group="Users",
        customer="social@example.com",
        tags=["social", "fairdesk"],
        timeout_seconds=1.0,
    )
    values.update(changes)
    settings = Settings(
        data_dir=tmp_path / "data",
        sample={"demo": SampleAccount(per_poll=per_poll)},
        helpdesk={"zammad": ZammadSettings(**values)},  # type: ignore[arg-type, dict-item]
    )
    return build(settings, classify=fake_classify, engine=make_engine(f"sqlite:///{tmp_path / 'fairdesk.db'}"))


@pytest.fixture
def daemon(tmp_path: Path, zammad: FakeZammadServer) -> Iterator[Daemon]:
    """A daemon on the bundled sample feed (the fake content-only classifier) filing into the fake Zammad."""
    d = _daemon(tmp_path, zammad)
    yield d
    d.close()


def _refs(daemon: Daemon) -> list[str]:
    with transaction(daemon.sessions) as session:
        return sorted(t.ref for t in session.exec(select(Ticket)))


def _refs_in_zammad(zammad: FakeZammadServer) -> list[str]:
    refs = []
    for ticket in zammad.tickets():
        match = REF.match(ticket["title"])
        assert match, ticket["title"]
        refs.append(match.group(1))
    return sorted(refs)


def _rows(daemon: Daemon) -> list[HelpdeskDelivery]:
    with transaction(daemon.sessions) as session:
        return list(session.exec(select(HelpdeskDelivery).order_by(HelpdeskDelivery.id)))


def _later(daemon: Daemon, minutes: int = 2) -> int:
    return deliver_due(
        daemon.helpdesks,
        sessions=daemon.sessions,
        policy=daemon.filing_policy,
        owner="later",
        now=utcnow() + timedelta(minutes=minutes),
    )


def test_the_sample_feed_files_one_ticket_per_complaint_and_nothing_else_without_reach(
    daemon: Daemon, zammad: FakeZammadServer
) -> None:
    drain(daemon)
    filed = daemon.deliver()
    assert filed > 0 and daemon.deliver() == 0  # nothing twice
    assert _refs_in_zammad(zammad) == _refs(daemon)  # one each, nothing else
    with transaction(daemon.sessions) as session:
        assert session.exec(select(LedgerEntry).where(LedgerEntry.outcome == "skipped")).all(), "non-complaints"
    creates = zammad.requests("ticket_create")
    assert len(creates) == filed
    for request in zammad.requests():
        text = request.raw.decode().lower()
        assert not any(word in text for word in REACH_WORDS), text  # every byte sent
        assert request.headers["authorization"] == f"Token token={zammad.token}"
    for request in creates:
        body = request.body
        assert body["group"] == "Users" and body["customer_id"] == "guess:social@example.com"
        assert body["tags"] == "social,fairdesk"  # one string: Zammad splits it; an array is a 500
        assert body["priority"] in ("3 high", "2 normal", "1 low")
        assert body["article"]["type"] == "note" and body["article"]["sender"] == "Customer"
        assert body["article"]["internal"] is True
        told = body["article"]["body"].split("\n—\n", 1)[1]
        assert "Filed by fairdesk as" in told and " by customer-" in told  # blind triage: a pseudonym
    (first, *_) = zammad.tickets()
    assert first["customer"] == "social@example.com" and first["state"] == "new"
    assert zammad.store.tickets[first["id"]].tags == ["social", "fairdesk"]


@pytest.mark.parametrize("moment", ["before the create", "after Zammad created it", "answer lost"])
def test_a_crash_during_delivery_leaves_exactly_one_ticket_although_search_lags(
    daemon: Daemon, zammad: FakeZammadServer, moment: str
) -> None:
    drain(daemon)
    real = daemon.helpdesks["zammad"]

    def at_kill(filing: Filing) -> None:
        if moment == "answer lost":
            zammad.inject("ticket_create", Fault.malformed())  # created, but the answer is cut short: no crash
            real.create(filing)
        if moment == "after Zammad created it":
            real.create(filing)

    killed = KilledOnCreate(real, at_kill=at_kill)
    if moment == "answer lost":
        deliver_due({"zammad": killed}, sessions=daemon.sessions, policy=daemon.filing_policy, owner="a")
    else:
        with pytest.raises(SimulatedCrash):
            deliver_due({"zammad": killed}, sessions=daemon.sessions, policy=daemon.filing_policy, owner="k")
    assert any(r.state == DeliveryState.UNCERTAIN for r in _rows(daemon))
    _later(daemon)  # the restarted daemon settles the uncertain row by asking Zammad, then goes on
    refs = _refs_in_zammad(zammad)
    assert refs == _refs(daemon) and len(refs) == len(set(refs))
    assert {r.state for r in _rows(daemon)} == {DeliveryState.FILED}
    searches = zammad.requests("ticket_search")
    assert searches and all("condition" in r.body and "query" not in r.body for r in searches)  # SQL, not the index


def test_a_reference_attribute_is_filled_and_settles_a_crash(tmp_path: Path, zammad: FakeZammadServer) -> None:
    zammad.store.attributes.add("fairdesk_ref")
    daemon = _daemon(tmp_path, zammad, per_poll=3, reference_field="fairdesk_ref")
    try:
        daemon.poll_all()
        daemon.deliver()
        ticket = zammad.tickets()[0]
        assert ticket["fairdesk_ref"] == REF.match(ticket["title"]).group(1)  # type: ignore[union-attr]
        zammad.store.tickets[ticket["id"]].title = "renamed by an agent"  # the attribute still finds it
        from fairdesk.jobs.deliveries import filing_for

        with transaction(daemon.sessions) as session:
            row = session.exec(select(HelpdeskDelivery).where(HelpdeskDelivery.remote_id == str(ticket["id"]))).one()
            filing = filing_for(session.get(Ticket, row.ticket_id), daemon.filing_policy)  # type: ignore[arg-type]
        assert daemon.helpdesks["zammad"].find(filing) == str(ticket["id"])
    finally:
        daemon.close()


def test_an_unknown_reference_attribute_is_refused_not_silently_dropped(
    tmp_path: Path, zammad: FakeZammadServer
) -> None:
    daemon = _daemon(tmp_path, zammad, per_poll=3, reference_field="no_such_attribute")
    try:
        daemon.poll_all()
        daemon.deliver()
        row = _rows(daemon)[0]
        assert row.state == DeliveryState.FAILED and "no_such_attribute" in (row.last_error or "")
    finally:
        daemon.close()


@pytest.mark.parametrize(
    ("fault", "first_wait"),
    [
        (Fault.rate_limited(retry_after=7), (6.5, 7.5)),  # Retry-After honoured
        (Fault.rate_limited(retry_after=None), (1, 60)),  # backoff, first retry within a minute
        (Fault.error(503), (1, 60)),
        (Fault.error(500), (1, 60)),
        (Fault.disconnect(), (1, 60)),
        (Fault.slow(2.0), (1, 60)),  # past the 1 s timeout, and Zammad still created it
    ],
    ids=["429-retry-after", "429-bare", "503", "500", "disconnect", "timeout"],
)
def test_429_5xx_and_timeouts_are_retried_within_the_limits_and_file_once(
    tmp_path: Path, zammad: FakeZammadServer, fault: Fault, first_wait: tuple[float, float]
) -> None:
    daemon = _daemon(tmp_path, zammad, per_poll=3)
    try:
        daemon.poll_all()
        zammad.inject("ticket_create", fault)
        daemon.deliver()
        waiting = [r for r in _rows(daemon) if r.state != DeliveryState.FILED]
        assert len(waiting) == 1 and waiting[0].last_error
        wait = (waiting[0].next_attempt_at - utcnow()).total_seconds()
        assert first_wait[0] <= wait <= first_wait[1], wait
        assert daemon.deliver() == 0  # not due yet
        _later(daemon)
        assert _refs_in_zammad(zammad) == _refs(daemon)  # the slow create was found, not filed again
        assert {r.state for r in _rows(daemon)} == {DeliveryState.FILED}
    finally:
        daemon.close()


def test_an_agent_closing_in_zammad_shows_on_the_customers_page(daemon: Daemon, zammad: FakeZammadServer) -> None:
    daemon.poll_all()
    daemon.send_replies()
    daemon.deliver()
    reply = daemon.adapters[("sample", "demo")].sent()[0]  # type: ignore[attr-defined]
    token = LINK.search(reply["text"]).group(1)  # type: ignore[union-attr]
    with transaction(daemon.sessions) as session:
        ticket = session.exec(select(Ticket).where(Ticket.post_id == reply["in_reply_to"])).one()
        remote_id = session.exec(
            select(HelpdeskDelivery.remote_id).where(HelpdeskDelivery.ticket_id == ticket.id)
        ).one()
    assert daemon.sync() == 0  # "new" in Zammad is "new" here
    zammad.set_state(remote_id, "closed")  # type: ignore[arg-type]
    zammad.inject("ticket_show", Fault.error(403))  # one ticket unreadable (whichever is read first) ...
    shows = len(zammad.requests("ticket_show"))
    changed = daemon.sync()
    assert len(zammad.requests("ticket_show")) - shows == len(_rows(daemon))  # ... does not stop the others
    assert changed + daemon.sync() == 1
    with TestClient(daemon.web_app) as client:
        page = client.get(f"/t/{token}").text
    assert "solved" in page
    with transaction(daemon.sessions) as session:
        row = session.exec(select(HelpdeskDelivery).where(HelpdeskDelivery.ticket_id == ticket.id)).one()
    assert row.remote_status == "solved"


def test_details_and_email_from_the_customers_page_reach_the_ticket_once(
    daemon: Daemon, zammad: FakeZammadServer
) -> None:
    daemon.poll_all()
    daemon.send_replies()
    daemon.deliver()
    reply = daemon.adapters[("sample", "demo")].sent()[0]  # type: ignore[attr-defined]
    token = LINK.search(reply["text"]).group(1)  # type: ignore[union-attr]
    with TestClient(daemon.web_app) as client:
        page = client.get(f"/t/{token}")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        data = {"csrf": csrf, "details": "Order 4411, the router blinks red", "email": "pat@example.com"}
        assert client.post(f"/t/{token}", data={**data, "consent": "yes"}).status_code == 200
    zammad.inject("article_create", Fault.malformed())  # the article is added, the answer lost: retried
    daemon.deliver()
    _later(daemon)
    with transaction(daemon.sessions) as session:
        ticket = session.exec(select(Ticket).where(Ticket.post_id == reply["in_reply_to"])).one()
        remote_id = session.exec(
            select(HelpdeskDelivery.remote_id).where(HelpdeskDelivery.ticket_id == ticket.id)
        ).one()
    articles = zammad.articles(remote_id)  # type: ignore[arg-type]
    details = [a for a in articles if "the router blinks red" in a["body"]]
    assert len(details) == 1, articles  # once, although the first answer was lost
    assert details[0]["type"] == "note" and details[0]["sender"] == "Customer" and details[0]["internal"] is True
    (zammad_ticket,) = [t for t in zammad.tickets() if str(t["id"]) == remote_id]
    assert zammad_ticket["customer"] == "pat@example.com"  # the customer, created in Zammad
    _later(daemon, minutes=10)
    assert len(zammad.articles(remote_id)) == len(articles)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"token": "not-the-token"}, "Can't find User for Token"),
        ({"group": "No Such Group"}, "No lookup value found for 'group'"),
        ({"priority_map": {1: "9 urgent", 2: "9 urgent", 3: "9 urgent", 4: "9 urgent"}}, "'priority'"),
    ],
    ids=["bad-token", "unknown-group", "unknown-priority"],
)
def test_a_permanent_refusal_keeps_zammads_reason(
    tmp_path: Path, zammad: FakeZammadServer, changes: dict[str, object], reason: str
) -> None:
    daemon = _daemon(tmp_path, zammad, per_poll=3, **changes)
    try:
        daemon.poll_all()
        daemon.deliver()
        rows = _rows(daemon)
        assert rows and all(r.state == DeliveryState.FAILED for r in rows)
        assert all(reason in (r.last_error or "") for r in rows), [r.last_error for r in rows]
        assert zammad.tickets() == []
    finally:
        daemon.close()


def test_zammad_settings_are_documented_in_readme_and_the_example() -> None:
    from fairdesk.config.example import example_toml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = example_toml()
    for key, info in ZammadSettings.model_fields.items():
        assert info.description and len(info.description) > 10, key
        assert f"`helpdesk.NAME.{key}`" in readme or f"`{key}`" in readme, key
        assert info.description in example, key
    assert json.dumps("zammad") in example
