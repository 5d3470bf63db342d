"""The eight attacks of issue 13, each performed over HTTP against a served daemon, and what must hold instead."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from bs4 import BeautifulSoup
from sqlmodel import func, select

from fairdesk.ticketing.agents import set_password
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import RateCounter, Ticket, TicketEntry
from fairdesk.ticketing.web.limits import Limit, RateLimits
from tests.web.conftest import AGENT, OTHER_AGENT, OTHER_PASSWORD, PASSWORD, Site, csrf_of

ATTACKER, CUSTOMER, AGENT_DESK = "203.0.113.9", "198.51.100.7", "192.0.2.44"  # documentation addresses (RFC 5737)


def _behind_proxy(site: Site) -> None:
    """The daemon behind a reverse proxy on loopback: X-Forwarded-For names the client."""
    site.daemon.web_app.state.ctx.trusted_proxies = ("127.0.0.1",)


def _client(site: Site, address: str | None = None) -> httpx.Client:
    headers = {"X-Forwarded-For": address} if address else {}
    return httpx.Client(base_url=site.base, follow_redirects=True, headers=headers, timeout=60)


def _notes(site: Site, ticket_id: int | None) -> list[str]:
    with transaction(site.daemon.sessions) as session:
        rows = session.exec(select(TicketEntry).where(TicketEntry.ticket_id == ticket_id, TicketEntry.kind == "note"))
        return [r.body for r in rows]


def _note(client: httpx.Client, ticket_id: int | None, body: str, **headers: str) -> httpx.Response:
    page = client.get(f"/agent/tickets/{ticket_id}")
    data = {"csrf": csrf_of(page.text), "action": "note", "note": body}
    return client.post(f"/agent/tickets/{ticket_id}", data=data, headers=headers)


# 1. Locking out the admin ------------------------------------------------------------------------------------------


def test_thirty_wrong_passwords_from_one_client_do_not_keep_the_agent_out(site: Site) -> None:
    _behind_proxy(site)
    with _client(site, ATTACKER) as attacker:
        codes = {site.login(attacker, AGENT, f"guess number {i}").status_code for i in range(30)}
    assert codes <= {401, 429}
    started = time.monotonic()
    with _client(site, AGENT_DESK) as desk:
        while (answer := site.login(desk)).url.path != "/agent":
            assert answer.status_code in (401, 429)
            assert time.monotonic() - started < 8, "the real agent was kept out"
            time.sleep(0.5)
    assert time.monotonic() - started < 8


def _timed(attempts: dict[str, Callable[[], httpx.Response]], rounds: int = 7) -> dict[str, float]:
    """Median seconds per kind of attempt, taken in turns so that a busy moment on the machine hits all kinds alike."""
    spent: dict[str, list[float]] = {kind: [] for kind in attempts}
    for _ in range(rounds):
        for kind, attempt in attempts.items():
            started = time.perf_counter()
            assert attempt().status_code in (401, 429)
            spent[kind].append(time.perf_counter() - started)
    return {kind: statistics.median(times) for kind, times in spent.items()}


def test_unknown_user_wrong_password_and_throttled_account_take_the_same_time(site: Site) -> None:
    _behind_proxy(site)

    def attempt(client: httpx.Client, name: str, password: str) -> Callable[[], httpx.Response]:
        csrf = csrf_of(client.get("/agent/login").text)
        return lambda: client.post("/agent/login", data={"csrf": csrf, "name": name, "password": password})

    with _client(site, ATTACKER) as attacker, _client(site, CUSTOMER) as client:
        for i in range(8):  # enough to slow down (today: lock) OTHER_AGENT, and this client
            site.login(attacker, OTHER_AGENT, f"guess number {i}")
        medians = _timed(
            {
                "throttled": attempt(attacker, OTHER_AGENT, OTHER_PASSWORD),  # even the right password is refused
                "unknown": attempt(client, "nobody-here", "some password"),
                "wrong": attempt(client, AGENT, "not the password"),
            }
        )
    assert min(medians.values()) > max(medians.values()) / 3, medians


# 2. Logout does not end a session ----------------------------------------------------------------------------------


def test_a_cookie_copied_before_logout_opens_nothing_after_it(site: Site) -> None:
    ticket_id = site.ticket("1").id
    with site.client() as agent:
        site.login(agent)
        stolen = dict(agent.cookies)
        csrf = csrf_of(agent.get(f"/agent/tickets/{ticket_id}").text)
        agent.post("/agent/logout", data={"csrf": csrf})
    with httpx.Client(base_url=site.base, cookies=stolen) as thief:
        assert thief.get("/agent").status_code == 303
        posted = thief.post(f"/agent/tickets/{ticket_id}", data={"csrf": csrf, "action": "note", "note": "thief"})
        assert posted.status_code == 303 and posted.headers["location"].endswith("/agent/login")
    assert "thief" not in _notes(site, ticket_id)


def test_a_password_change_ends_every_session_of_that_agent(site: Site) -> None:
    with site.client() as agent, site.client() as other:
        site.login(agent)
        site.login(other, OTHER_AGENT, OTHER_PASSWORD)
        with transaction(site.daemon.sessions) as session:
            set_password(session=session, name=AGENT, password="a brand new long password")
        assert agent.get("/agent").url.path == "/agent/login"
        assert other.get("/agent").url.path == "/agent"


# 3. Silencing a customer -------------------------------------------------------------------------------------------


def test_a_flood_on_one_link_does_not_silence_its_customer(site: Site) -> None:
    _behind_proxy(site)
    token = site.tokens["1"]
    with _client(site, ATTACKER) as attacker:
        for _ in range(600):
            attacker.get(f"/t/{token}")
        csrf = csrf_of(attacker.get("/contact").text)
        for i in range(11):
            attacker.post(f"/t/{token}", data={"csrf": csrf, "details": f"spam {i}"})
    with _client(site, CUSTOMER) as customer:
        page = customer.get(f"/t/{token}")
        assert page.status_code == 200
        sent = customer.post(f"/t/{token}", data={"csrf": csrf_of(page.text), "details": "my order 12 is missing"})
        assert sent.status_code == 200 and BeautifulSoup(sent.text, "html.parser").select_one("#confirmation")


def test_unknown_links_cost_no_storage(site: Site) -> None:
    def rows() -> int:
        with transaction(site.daemon.sessions) as session:
            return int(session.exec(select(func.count()).select_from(RateCounter)).one())

    with site.client() as client:
        client.get(f"/t/{'A' * 22}")  # the client's own counter, if any, exists now
        before = rows()
        for i in range(40):
            assert client.get(f"/t/unknownlink{i:011d}xx").status_code == 404
    assert rows() == before


# 4. Spoofed X-Forwarded-For ----------------------------------------------------------------------------------------


def test_a_rotated_x_forwarded_for_does_not_escape_the_limits(site: Site) -> None:
    site.daemon.web_app.state.ctx.limits = RateLimits(login_per_client=Limit(3, 900))
    codes = []
    for i in range(5):
        with _client(site, f"203.0.113.{i + 1}") as client:
            codes.append(site.login(client, "nobody", "wrong password").status_code)
    assert codes[-1] == 429, codes


def test_x_forwarded_for_from_a_listed_proxy_names_the_client(site: Site) -> None:
    _behind_proxy(site)
    site.daemon.web_app.state.ctx.limits = RateLimits(login_per_client=Limit(3, 900))
    with _client(site, f"{ATTACKER}, 127.0.0.1") as attacker:
        assert [site.login(attacker, "nobody", "wrong password").status_code for _ in range(4)][-1] == 429
    with _client(site, CUSTOMER) as other:
        assert site.login(other).url.path == "/agent"


# 5. Concurrent logins break the site -------------------------------------------------------------------------------

CONNECTIONS = 50
JOBS = 200  # 100 logins, 100 customers each viewing a link, adding details and filing a web-form ticket


def test_fifty_concurrent_logins_and_submissions_answer_without_server_errors(site: Site) -> None:
    _behind_proxy(site)
    token = site.tokens["2"]

    def login(i: int) -> list[int]:
        with _client(site, f"10.1.{i // 250}.{i % 250}") as client:
            page = client.get("/agent/login")
            if page.status_code != 200:
                return [page.status_code]
            data = {"csrf": csrf_of(page.text), "name": AGENT, "password": PASSWORD}
            return [client.post("/agent/login", data=data).status_code]

    def submit(i: int) -> list[int]:
        with _client(site, f"10.2.{i // 250}.{i % 250}") as client:
            page = client.get(f"/t/{token}")
            if page.status_code != 200:
                return [page.status_code]
            data = {"csrf": csrf_of(page.text), "details": f"detail {i}"}
            form = {"csrf": csrf_of(page.text), "email": f"c{i}@example.com", "description": "my bill is wrong"}
            return [client.post(f"/t/{token}", data=data).status_code, client.post("/contact", data=form).status_code]

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        codes = [c for job in [pool.submit(login if i % 2 else submit, i) for i in range(JOBS)] for c in job.result()]
    assert [c for c in codes if c >= 500] == []
    assert set(codes) <= {200}, sorted(set(codes))


class SlowHasher:
    """Verifies like argon2 but takes ``seconds``: makes a hash run inside a database write plain to see."""

    def __init__(self, real: object, seconds: float) -> None:
        self.real, self.seconds = real, seconds

    def verify(self, password_hash: str, password: str) -> bool:
        time.sleep(self.seconds)
        return self.real.verify(password_hash, password)  # type: ignore[attr-defined,no-any-return]

    def hash(self, password: str) -> str:
        return self.real.hash(password)  # type: ignore[attr-defined,no-any-return]


def test_the_password_hash_runs_outside_any_database_write(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from fairdesk.ticketing import agents

    monkeypatch.setattr(agents, "_hasher", SlowHasher(agents._hasher, 3.0))

    def log_in() -> httpx.Response:
        with site.client() as client:
            return site.login(client, AGENT, "a wrong password")

    with ThreadPoolExecutor(2) as pool:
        logging_in = pool.submit(log_in)
        time.sleep(0.5)  # the login is hashing now
        started = time.perf_counter()
        with site.client() as customer:
            page = customer.get("/contact")
            form = {"csrf": csrf_of(page.text), "email": "sam@example.com", "description": "my bill is wrong"}
            assert customer.post("/contact", data=form).status_code == 200
        waited = time.perf_counter() - started
        assert logging_in.result().status_code == 401
    assert waited < 1.5, f"a customer's form waited {waited:.1f} s for someone's login"


# 6. Cross-origin posts ---------------------------------------------------------------------------------------------


def test_a_cross_origin_post_with_a_valid_csrf_token_is_refused(site: Site) -> None:
    ticket_id = site.ticket("1").id
    with site.client() as agent:
        site.login(agent)
        assert _note(agent, ticket_id, "from evil", Origin="https://evil.example").status_code == 403
        assert _note(agent, ticket_id, "via referer", Referer="https://evil.example/page").status_code == 403
        assert _note(agent, ticket_id, "null origin", Origin="null").status_code == 403
        assert _note(agent, ticket_id, "same origin", Origin=site.base).status_code == 200
    assert _notes(site, ticket_id) == ["same origin"]


# 7. Out-of-range ids -----------------------------------------------------------------------------------------------


def test_out_of_range_ticket_ids_are_404(site: Site) -> None:
    with site.client() as agent:
        site.login(agent)
        for raw in ("99999999999999999999", "2147483648", "-1", "0", "1e3"):
            assert agent.get(f"/agent/tickets/{raw}").status_code == 404, raw
        page = agent.get(f"/agent/tickets/{site.ticket('1').id}")
        retry = {"csrf": csrf_of(page.text), "action": "retry", "mail_id": "99999999999999999999"}
        assert agent.post(f"/agent/tickets/{site.ticket('1').id}", data=retry).status_code == 400
        note = {"csrf": csrf_of(page.text), "action": "note", "note": "x"}
        assert agent.post("/agent/tickets/99999999999999999999", data=note).status_code == 404
    with transaction(site.daemon.sessions) as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 4
