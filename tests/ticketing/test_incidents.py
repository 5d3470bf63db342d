"""Which complaints join an incident (content, category and time only), why, and what an agent's split does."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from fairdesk.config.settings import ConfigError, load_settings
from fairdesk.ticketing.db import SessionFactory, session_factory, transaction
from fairdesk.ticketing.incident_desk import NotInIncident, open_incidents, split_ticket
from fairdesk.ticketing.incidents import DEFAULT_RULES, IncidentRules, bind_incident_rules, similarity
from fairdesk.ticketing.intake import IntakeResult, record_mention
from fairdesk.ticketing.models import EntryKind, Incident, Outbox, Outcome, Ticket, TicketEntry
from fairdesk.ticketing.priority import incident_priority
from tests.support import T0, fake_classify, mention

DOWN = "@brand internet down again in Leeds, nothing loads"
DOWN_TOO = "@brand is the internet down? nothing loads here in Leeds"
BILLING = "@brand charged twice this month, I want a refund"
ROUTER = "@brand my router is dead since the engineer left, the wifi light blinks red"  # 'outage', other words
REFUND = "@brand refund the internet down days, nothing loads. Refund please"  # as alike as DOWN_TOO, but 'billing'


def _sessions(engine: Engine, rules: IncidentRules = DEFAULT_RULES) -> SessionFactory:
    factory = session_factory(engine)

    def bound() -> Session:
        return bind_incident_rules(factory(), rules)

    return bound


def post(
    sessions: SessionFactory, post_id: str, text: str, *, author: str | None = None, minutes: float = 0
) -> IntakeResult:
    who = author or f"author-{post_id}"
    m = mention(post_id, text, author_id=who, author_handle=f"h_{who}", created_at=T0 + timedelta(minutes=minutes))
    with transaction(sessions) as session:
        return record_mention(session=session, mention=m, verdict=fake_classify([text])[0])


def tickets(sessions: SessionFactory) -> dict[str, Ticket]:
    with transaction(sessions) as session:
        return {str(t.post_id): t for t in session.exec(select(Ticket))}


def incidents(sessions: SessionFactory) -> list[Incident]:
    with transaction(sessions) as session:
        return list(session.exec(select(Incident).order_by(col(Incident.id))))


def test_similarity_is_shared_problem_words() -> None:
    assert similarity(DOWN, DOWN_TOO) == 1.0  # the same words, said differently: handles and stopwords left out
    assert similarity(DOWN, "@brand internet down in York, nothing loads") == pytest.approx(4 / 6)
    assert similarity(DOWN, BILLING) == 0.0
    assert similarity(DOWN, "@brand 🙃🙃") == 0.0


def test_near_duplicates_join_with_a_reason_and_unrelated_complaints_do_not(engine: Engine) -> None:
    sessions = _sessions(engine)
    post(sessions, "1", DOWN)
    post(sessions, "2", BILLING, minutes=1)
    post(sessions, "3", ROUTER, minutes=2)
    post(sessions, "5", REFUND, minutes=3)
    assert similarity(DOWN, REFUND) >= DEFAULT_RULES.threshold
    assert incidents(sessions) == []  # nothing alike in the same category yet: no incident of one
    post(sessions, "4", DOWN_TOO, minutes=14)
    (incident,) = incidents(sessions)
    by_post = tickets(sessions)
    assert {p for p, t in by_post.items() if t.incident_id == incident.id} == {"1", "4"}
    assert incident.reporters == 2 and incident.category == "outage"
    assert by_post["4"].incident_reason == (
        f"joined incident {incident.ref}: 1.00 similar to {by_post['1'].ref}, same category 'outage', "
        "14 min apart (window 2 h)"
    )
    assert by_post["1"].incident_reason is not None and by_post["1"].incident_reason.startswith(
        f"founded incident {incident.ref} with {by_post['4'].ref}: 1.00 similar"
    )
    with transaction(sessions) as session:  # the reason is on each ticket's (internal) timeline too
        entries = list(session.exec(select(TicketEntry).where(TicketEntry.kind == EntryKind.INCIDENT)))
    assert {e.ticket_id for e in entries} == {by_post["1"].id, by_post["4"].id}
    assert not any(e.public for e in entries)


def test_the_same_complaint_outside_the_window_starts_a_new_incident(engine: Engine) -> None:
    sessions = _sessions(engine, IncidentRules(window=timedelta(minutes=60)))
    post(sessions, "1", DOWN)
    post(sessions, "2", DOWN_TOO, minutes=30)
    post(sessions, "3", DOWN, minutes=200)  # 170 min after the last linked report: another outage
    post(sessions, "4", DOWN_TOO, minutes=210)
    first, second = incidents(sessions)
    by_post = tickets(sessions)
    assert [by_post[p].incident_id for p in "1234"] == [first.id, first.id, second.id, second.id]
    assert "(window 1 h)" in str(by_post["4"].incident_reason)


def test_a_solved_incident_takes_no_new_reports(engine: Engine) -> None:
    sessions = _sessions(engine)
    post(sessions, "1", DOWN)
    post(sessions, "2", DOWN_TOO, minutes=5)
    with transaction(sessions) as session:
        session.exec(select(Incident)).one().status = "solved"
    post(sessions, "3", DOWN, minutes=10)
    post(sessions, "4", DOWN_TOO, minutes=11)
    first, second = incidents(sessions)
    assert (first.reporters, second.reporters) == (2, 2) and first.status == "solved"


def test_one_person_posting_again_in_new_threads_is_one_ticket_one_reply_one_reporter(engine: Engine) -> None:
    sessions = _sessions(engine)
    results = [post(sessions, str(n), DOWN, author="same-person", minutes=n) for n in range(1, 51)]
    assert results[0].outcome == Outcome.TICKETED and results[0].reply_queued
    assert {r.outcome for r in results[1:]} == {Outcome.APPENDED} and not any(r.reply_queued for r in results[1:])
    assert {r.ticket_id for r in results} == {results[0].ticket_id}
    with transaction(sessions) as session:
        assert len(list(session.exec(select(Outbox)))) == 1
        posts = session.exec(select(TicketEntry).where(TicketEntry.kind == EntryKind.POST)).all()
    assert len(posts) == 49
    post(sessions, "60", DOWN_TOO, minutes=60)
    (incident,) = incidents(sessions)
    assert incident.reporters == 2


def test_one_persons_other_problem_gets_its_own_ticket_and_a_more_urgent_post_raises_theirs(engine: Engine) -> None:
    sessions = _sessions(engine)
    first = post(sessions, "1", "@brand internet down", author="pat")
    billing = post(sessions, "2", BILLING, author="pat", minutes=5)
    assert billing.outcome == Outcome.TICKETED and billing.ticket_id != first.ticket_id and billing.reply_queued
    urgent = post(sessions, "3", "@brand still down, never fixed, worst week, still broken", author="pat", minutes=9)
    assert urgent.outcome == Outcome.APPENDED and urgent.ticket_id == first.ticket_id
    assert urgent.reason == "the author's open ticket (window 2 h)"
    by_post = tickets(sessions)
    assert by_post["1"].priority == 1  # severity 4 now: the more urgent of the two posts


def test_a_reporters_more_urgent_post_raises_their_incident_too(engine: Engine) -> None:
    sessions = _sessions(engine)
    post(sessions, "1", DOWN, author="pat")
    post(sessions, "2", DOWN_TOO, minutes=1)
    assert incidents(sessions)[0].priority == 4  # two low-severity reports: below the first reporter step
    urgent = post(sessions, "3", "@brand internet still down, never fixed, worst week, still broken", author="pat")
    assert urgent.outcome == Outcome.APPENDED
    (incident,) = incidents(sessions)
    assert (tickets(sessions)["1"].priority, incident.priority, incident.reporters) == (1, 1, 2)


def test_reporters_are_people_even_when_one_person_has_two_tickets_in_an_incident(engine: Engine) -> None:
    sessions = _sessions(engine, IncidentRules(window=timedelta(minutes=60)))
    post(sessions, "1", DOWN, author="pat")
    for n in range(2, 6):  # others keep the incident going past pat's window
        post(sessions, str(n), DOWN_TOO, minutes=50 * (n - 1))
    post(sessions, "9", DOWN, author="pat", minutes=230)  # pat again, 230 min later: a ticket of their own
    by_post = tickets(sessions)
    (incident,) = incidents(sessions)
    assert by_post["1"].id != by_post["9"].id and by_post["1"].incident_id == by_post["9"].incident_id == incident.id
    assert incident.reporters == 5  # pat + four others; six tickets
    assert incident.priority == incident_priority(min(t.priority for t in by_post.values()), 5)


def test_split_is_logged_stops_counting_and_is_not_grouped_again(engine: Engine) -> None:
    sessions = _sessions(engine)
    for n in range(1, 4):
        post(sessions, str(n), DOWN if n % 2 else DOWN_TOO, minutes=n)
    by_post = tickets(sessions)
    with transaction(sessions) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.reporters == 3
        wrong = session.get(Ticket, by_post["2"].id)
        assert wrong is not None
        split_ticket(session=session, incident=incident, ticket=wrong, actor="alex")
        with pytest.raises(NotInIncident):
            split_ticket(session=session, incident=incident, ticket=wrong, actor="alex")
        assert incident.reporters == 2
        log = session.exec(
            select(TicketEntry).where(TicketEntry.ticket_id == wrong.id, TicketEntry.actor == "alex")
        ).one()
    assert log.kind == EntryKind.INCIDENT and log.body == f"Split out of incident {incident.ref} by alex"
    post(sessions, "7", DOWN_TOO, minutes=7)  # most like the split ticket, which no longer groups
    by_post = tickets(sessions)
    assert by_post["2"].incident_id is None and by_post["7"].incident_id == incident.id
    assert incidents(sessions)[0].reporters == 3


def test_queue_lists_incidents_from_min_reporters(engine: Engine) -> None:
    sessions = _sessions(engine)
    post(sessions, "1", DOWN)
    post(sessions, "2", DOWN_TOO, minutes=1)
    with transaction(sessions) as session:
        assert [i.reporters for i in open_incidents(session=session, min_reporters=2)] == [2]
        assert open_incidents(session=session, min_reporters=3) == []


def test_disabled_means_no_incidents_and_no_joining(engine: Engine) -> None:
    sessions = _sessions(engine, IncidentRules(enabled=False))
    post(sessions, "1", DOWN, author="pat")
    post(sessions, "2", DOWN_TOO, author="pat", minutes=1)
    post(sessions, "3", DOWN_TOO, minutes=2)
    assert incidents(sessions) == [] and len(tickets(sessions)) == 3


@pytest.mark.parametrize(
    ("toml", "key", "hint"),
    [
        ("[incidents]\nwindow_minutes = 0\n", "incidents.window_minutes", "greater than 0"),
        ("[incidents]\nsimilarity = 1.5\n", "incidents.similarity", "less than or equal to 1"),
        ("[incidents]\nmin_reporters = 1\n", "incidents.min_reporters", "greater than or equal to 2"),
        ('[incidents]\nenabled = "sometimes"\n', "incidents.enabled", "without quotes"),
        ("[incidents]\nwindow = 30\n", "incidents.window", "unknown setting"),
    ],
)
def test_bad_incident_settings_are_one_line_naming_the_key(tmp_path: Path, toml: str, key: str, hint: str) -> None:
    path = tmp_path / "fairdesk.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "\n" not in str(caught.value) and f"`{key}`" in str(caught.value) and hint in str(caught.value)


def test_incident_settings_become_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "fairdesk.toml"
    path.write_text("[incidents]\nwindow_minutes = 45\nsimilarity = 0.6\nmin_reporters = 3\n", encoding="utf-8")
    rules = IncidentRules.from_settings(load_settings(path).incidents)
    assert rules == IncidentRules(enabled=True, window=timedelta(minutes=45), threshold=0.6, min_reporters=3)


def test_reports_arriving_at_once_from_several_daemons_join_one_incident(engine: Engine) -> None:
    # Other accounts' polls record at the same moment; each daemon's intake locks the incident and then the ticket it
    # matched, so they found one incident and recount one after another.
    sessions = _sessions(engine)
    post(sessions, "1", DOWN)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def report(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for attempt in range(5):
                try:
                    post(sessions, str(10 + n), DOWN_TOO, minutes=1 + n)
                    return
                except OperationalError:  # SQLite: the database is busy; a poll would retry the batch
                    time.sleep(0.05 * (attempt + 1))
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=report, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    (incident,) = incidents(sessions)
    by_post = tickets(sessions)
    assert len(by_post) == 7 and {t.incident_id for t in by_post.values()} == {incident.id}
    assert incident.reporters == 7
