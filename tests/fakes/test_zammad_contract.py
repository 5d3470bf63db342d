"""The fake Zammad answers as the contract notes say Zammad does (shapes, errors, search paths), and no more kindly."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.zammad_server import FakeZammadServer, Fault

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# The recorded create response (notes §2, [REC]) and the keys the notes list beside it.
RECORDED_TICKET_KEYS = {
    "id", "group_id", "priority_id", "state_id", "organization_id", "number", "title", "owner_id", "customer_id",
    "note", "first_response_at", "close_at", "last_contact_at", "create_article_type_id", "create_article_sender_id",
    "article_count", "escalation_at", "pending_time", "type", "time_unit", "preferences", "updated_by_id",
    "created_by_id", "created_at", "updated_at", "article_ids", "ticket_time_accounting_ids",
}  # fmt: skip
EXPAND_KEYS = {
    "group", "organization", "state", "priority", "owner", "customer", "created_by", "updated_by",
    "create_article_type", "create_article_sender",
}  # fmt: skip
ARTICLE_KEYS = {
    "id", "ticket_id", "type_id", "sender_id", "from", "to", "cc", "subject", "reply_to", "message_id",
    "message_id_md5", "in_reply_to", "content_type", "references", "body", "internal", "preferences", "updated_by_id",
    "created_by_id", "origin_by_id", "created_at", "updated_at", "attachments", "type", "sender", "created_by",
    "updated_by",
}  # fmt: skip
TICKET = {"title": "Order 1234 never arrived", "group": "Users", "customer_id": "guess:jane@example.com"}


@pytest.fixture
def server() -> Iterator[FakeZammadServer]:
    with FakeZammadServer(search_lag=0.3) as s:
        yield s


@pytest.fixture
def api(server: FakeZammadServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Token token={server.token}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=5) as client:
        yield client


def _error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_human"} and message in body["error"], body  # notes §7


def _create(api: httpx.Client, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**TICKET, "article": {"body": "It never arrived.", "type": "note"}, **changes}
    response = api.post("/tickets", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_authentication_answers_as_notes_section_1(server: FakeZammadServer) -> None:
    with httpx.Client(base_url=server.url + "/api/v1") as bare:
        _error(bare.get("/tickets/1"), 403, "Authentication required")
        wrong = bare.get("/tickets/1", headers={"Authorization": "Token token=nope"})
        _error(wrong, 401, "Can't find User for Token")
        assert "X-Failure" in wrong.headers
        _error(bare.get("/tickets/1", headers={"Authorization": f"Bearer {server.token}"}), 401, "Can't find User")


def test_create_returns_201_with_the_recorded_shape_and_ids(api: httpx.Client) -> None:
    ticket = _create(api, priority="3 high", tags="social,x")
    assert RECORDED_TICKET_KEYS <= set(ticket) and not EXPAND_KEYS & set(ticket)  # ids only without expand
    assert isinstance(ticket["id"], int) and isinstance(ticket["number"], str)
    assert TIMESTAMP.match(ticket["created_at"]) and TIMESTAMP.match(ticket["updated_at"])
    assert ticket["article_count"] == 1 and len(ticket["article_ids"]) == 1
    expanded = api.get(f"/tickets/{ticket['id']}", params={"expand": "true"}).json()
    assert EXPAND_KEYS <= set(expanded)
    assert expanded["group"] == "Users" and expanded["priority"] == "3 high" and expanded["state"] == "new"
    assert expanded["customer"] == "jane@example.com"  # guess: created the customer


def test_validation_errors_are_422_with_zammads_messages(api: httpx.Client) -> None:
    _error(api.post("/tickets", json={**TICKET, "group": "not_existing"}), 422, "No lookup value found for 'group'")
    _error(api.post("/tickets", json={"title": "x", "customer_id": 2}), 422, "Group can't be blank")
    bad = api.post("/tickets", json={**TICKET, "customer_id": "guess:not-an-email"})
    _error(bad, 422, "Invalid email 'not-an-email' of customer")
    lookup_only = {"title": "x", "group": "Users", "customer": "nobody@example.com"}  # no guess: no creating
    _error(api.post("/tickets", json=lookup_only), 422, "No lookup value found for 'customer'")
    _error(api.post("/tickets", json={**TICKET, "article": {"type": "note"}}), 422, "Need at least article")
    assert api.post("/tickets", json={**TICKET, "article": {"body": ""}}).status_code == 201  # body "" is accepted
    _error(api.post("/tickets", json={**TICKET, "owner_id": 0}), 422, "Invalid value for param 'owner_id': 0")


def test_tags_are_one_comma_separated_string(api: httpx.Client, server: FakeZammadServer) -> None:
    ticket = _create(api, tags="a,b")
    assert server.store.tickets[ticket["id"]].tags == ["a", "b"]
    masked = api.post("/tickets", json={**TICKET, "tags": ["a", "b"]})  # the controller calls .split(',')
    _error(masked, 500, "Please contact your administrator")


def test_unknown_ticket_is_404_and_unknown_custom_attributes_are_dropped(
    api: httpx.Client, server: FakeZammadServer
) -> None:
    _error(api.get("/tickets/999"), 404, "Couldn't find Ticket with 'id'=999")
    assert "external_ref" not in _create(api, external_ref="x:1")
    server.store.attributes.add("external_ref")
    assert _create(api, external_ref="x:1")["external_ref"] == "x:1"


def test_articles_have_the_documented_shape_defaults_and_listing(api: httpx.Client) -> None:
    ticket = _create(api)
    response = api.post("/ticket_articles", json={"ticket_id": ticket["id"], "body": "Called the customer."})
    assert response.status_code == 201
    article = response.json()
    assert set(article) == ARTICLE_KEYS
    assert article["type"] == "note" and article["sender"] == "Agent"  # defaults for an agent
    assert article["internal"] is False and article["content_type"] == "text/plain"
    listed = api.get(f"/ticket_articles/by_ticket/{ticket['id']}").json()
    assert [a["body"] for a in listed] == ["It never arrived.", "Called the customer."]


def test_update_sets_state_and_looks_the_customer_up_only(api: httpx.Client) -> None:
    ticket = _create(api)
    updated = api.put(f"/tickets/{ticket['id']}", json={"state": "closed", "article": {"body": "Solved"}})
    assert updated.status_code == 200 and updated.json()["state_id"] == 4 and updated.json()["article_count"] == 2
    _error(api.put(f"/tickets/{ticket['id']}", json={"customer": "pat@example.com"}), 422, "'customer'")
    user = api.post("/users", json={"email": "pat@example.com"})
    assert user.status_code == 201
    _error(api.post("/users", json={"email": "pat@example.com"}), 422, "already used")
    moved = api.put(f"/tickets/{ticket['id']}", json={"customer": "pat@example.com"}, params={"expand": "true"})
    assert moved.json()["customer"] == "pat@example.com"


def test_search_shapes_and_the_two_paths(api: httpx.Client, server: FakeZammadServer) -> None:
    ticket = _create(api)
    condition = {"condition": {"ticket.title": {"operator": "contains", "value": "Order 1234"}}}
    by_condition = api.post("/tickets/search", params={"expand": "true"}, json=condition).json()
    assert [t["id"] for t in by_condition] == [ticket["id"]]  # SQL: at once
    assert api.get("/tickets/search", params={"query": "Order", "expand": "true"}).json() == []  # ES: not yet
    plain = api.get("/tickets/search", params={"query": "Order"}).json()
    assert set(plain) == {"tickets", "tickets_count", "assets"}  # no flags: ids and assets (2021/2022 shape)
    time.sleep(0.35)
    assert [t["id"] for t in api.get("/tickets/search", params={"query": "Order", "expand": "true"}).json()] == [
        ticket["id"]
    ]
    server.store.elasticsearch, server.store.search_lag = False, 60.0
    other = _create(api, title="Refund missing")
    assert [t["id"] for t in api.get("/tickets/search", params={"query": "refund", "expand": "true"}).json()] == [
        other["id"]
    ]  # without Elasticsearch a query is SQL ILIKE, immediate


def test_states_priorities_and_no_rate_limit_headers(api: httpx.Client, server: FakeZammadServer) -> None:
    ticket = _create(api)
    for state_id, state in ((2, "open"), (3, "pending reminder"), (4, "closed"), (7, "pending close")):
        answer = api.put(f"/tickets/{ticket['id']}", json={"state": state})
        assert answer.json()["state_id"] == state_id
        assert not any(h.lower().startswith(("x-ratelimit", "x-rate-limit")) for h in answer.headers)  # notes §8
    for priority_id, priority in ((1, "1 low"), (2, "2 normal"), (3, "3 high")):
        assert api.put(f"/tickets/{ticket['id']}", json={"priority": priority}).json()["priority_id"] == priority_id


def test_injected_faults(api: httpx.Client, server: FakeZammadServer) -> None:
    server.inject("ticket_create", Fault.rate_limited(retry_after=3), Fault.error(502), Fault.malformed())
    limited = api.post("/tickets", json=TICKET)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert api.post("/tickets", json=TICKET).status_code == 502
    cut = api.post("/tickets", json=TICKET)
    assert cut.status_code == 201 and not cut.text.endswith("}")
    assert len(server.tickets()) == 1  # the malformed answer's ticket was created
    assert [r.status for r in server.requests("ticket_create")] == [429, 502, 201]
