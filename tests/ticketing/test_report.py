"""The fairness report's figures on tickets with known clocks: percentiles, coverage, resolution, verdict, exports."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from fairdesk.ticketing.db import session_factory, transaction
from fairdesk.ticketing.models import Incident, MailOutbox, MailState, Outbox, ReplyState, Ticket, TicketEntry
from fairdesk.ticketing.report import Report, build_report, parse_period
from fairdesk.ticketing.report_export import CSV_COLUMNS, anonymous, csv_text, table_text
from fairdesk.ticketing.verdict import verdicts

SINCE, UNTIL = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)
FILED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOUR = 3600.0
_numbers = itertools.count(1)
HANDLE, TEXT, POST = "famous_person", "<script>alert(1)</script> my router is dead", "post-8812345"


def _ticket(
    session: Session,
    channel: str,
    *,
    platform: str | None = None,
    triage: str | None = None,
    responded: float | None = None,
    by_mail: bool = False,
    replied: bool = False,
    statuses: tuple[tuple[float, str], ...] = (),
    filed: datetime = FILED,
    found_by: str = "mention",
) -> Ticket:
    """A ticket filed at ``filed``: an agent's first response ``responded`` hours later (a status change, or an email
    with ``by_mail``), a public reply sent if ``replied``, and status changes at (hours after filing, status)."""
    n = next(_numbers)
    ticket = Ticket(
        channel=channel,
        platform=platform,
        priority=3,
        subject=TEXT,
        body=TEXT,
        author_handle=HANDLE if platform else None,
        post_id=f"{POST}-{n}" if platform else None,
        found_by=found_by if platform else None,
        account="brand_account",
        triage_reason=triage,
        created_at=filed - timedelta(days=2),  # the post's own time is not the service's clock
        filed_at=filed,
        status=statuses[-1][1] if statuses else "new",
        token_hash=f"{n:064d}",
    )
    session.add(ticket)
    session.flush()
    if responded is not None:
        at = filed + timedelta(hours=responded)
        if by_mail:
            session.add(
                MailOutbox(
                    ticket_id=ticket.id,
                    to_addr="pat@example.com",
                    subject="s",
                    body="b",
                    actor="alex",
                    state=MailState.SENT,
                    sent_at=at,
                )
            )
        else:
            ticket.first_response_at = at
    for hours, status in statuses:
        session.add(
            TicketEntry(
                ticket_id=ticket.id,
                kind="status",
                body=f"Status: {status}",
                actor="alex",
                public=True,
                created_at=filed + timedelta(hours=hours),
            )
        )
    if platform:
        session.add(
            Outbox(
                ticket_id=ticket.id,
                platform=platform,
                account="brand_account",
                in_reply_to=str(ticket.post_id),
                state=ReplyState.SENT if replied else ReplyState.FAILED,
            )
        )
    session.add(ticket)
    return ticket


def _seed(engine: Engine) -> None:
    with transaction(session_factory(engine)) as s:
        # x: first responses after 1, 2, 3, 4 and 10 hours; 4 of 5 public replies sent; two posts were not English.
        for hours, replied, triage in ((1, True, "not_english"), (2, True, None), (3, True, "not_english")):
            _ticket(s, "social", platform="x", triage=triage, responded=hours, replied=replied)
        _ticket(s, "social", platform="x", responded=4, replied=True, statuses=((5, "solved"),))
        _ticket(s, "social", platform="x", responded=10, replied=False, statuses=((1, "solved"), (2, "open")))
        # bluesky: 1, 1, 2, 2, 3, 3 hours, every reply sent; one emoji-only post.
        for i, hours in enumerate((1, 1, 2, 2, 3, 3)):
            _ticket(
                s, "social", platform="bluesky", triage="emoji_only" if i == 0 else None, responded=hours, replied=True
            )
        # web: answered by email after 0.5, 1, 1, 1, 2 hours; resolved after 2, 4, 6, 8 and 20 hours.
        resolutions = (
            ((2, "solved"),),
            ((3, "solved"), (4, "closed")),  # solved at 3 h, closed later: resolved at 3 h
            ((1, "solved"), (2, "open"), (6, "solved")),  # reopened, solved again at 6 h
            ((8, "closed"),),
            ((20, "solved"),),
        )
        for hours, statuses in zip((0.5, 1, 1, 1, 2), resolutions, strict=True):
            web = _ticket(s, "web", responded=hours, by_mail=True, statuses=statuses)
        # A public notice on the timeline after the last resolution is not a reopening.
        s.add(
            TicketEntry(
                ticket_id=web.id,
                kind="status",
                body="The post was deleted by its author; its text was removed",
                actor="fairdesk",
                public=True,
                created_at=FILED + timedelta(hours=30),
            )
        )
        # email: only two tickets; one answered.
        _ticket(s, "email", responded=1, by_mail=True)
        _ticket(s, "email")
        # Outside the period: never counted.
        _ticket(s, "social", platform="x", responded=100, filed=SINCE - timedelta(seconds=1))
        _ticket(s, "web", responded=100, filed=UNTIL)


@pytest.fixture
def report(engine: Engine) -> Report:
    _seed(engine)
    with transaction(session_factory(engine)) as session:
        return build_report(session=session, since=SINCE, until=UNTIL)


def _cells(report: Report, dimension: str, name: str) -> tuple[int, int, float | None, float | None]:
    group = report.group(dimension, name)
    assert group is not None, (dimension, name)
    return group.tickets, group.first_response.n, group.first_response.p50, group.first_response.p90


def test_first_response_percentiles_by_channel_platform_and_triage(report: Report) -> None:
    assert _cells(report, "all", "all")[:2] == (18, 17)
    # social: 1,1,1,2,2,2,3,3,3,4,10 hours -> the 6th value; p90 at rank 9 of 0..10: 4 h.
    assert _cells(report, "channel", "social") == (11, 11, 2 * HOUR, 4 * HOUR)
    # web: 0.5,1,1,1,2 -> 1 h; p90 at rank 3.6: 1 + 0.6 * (2 - 1) = 1.6 h.
    assert _cells(report, "channel", "web") == (5, 5, 1 * HOUR, pytest.approx(1.6 * HOUR))
    assert _cells(report, "channel", "email") == (2, 1, 1 * HOUR, 1 * HOUR)
    # x: 1,2,3,4,10 -> 3 h; p90 at rank 3.6: 4 + 0.6 * 6 = 7.6 h. bluesky: 1,1,2,2,3,3 -> 2 h; rank 4.5: 3 h.
    assert _cells(report, "platform", "x") == (5, 5, 3 * HOUR, pytest.approx(7.6 * HOUR))
    assert _cells(report, "platform", "bluesky") == (6, 6, 2 * HOUR, 3 * HOUR)
    assert _cells(report, "triage", "needed") == (3, 3, 1 * HOUR, pytest.approx(2.6 * HOUR))
    assert _cells(report, "triage", "not needed")[:2] == (15, 14)
    assert _cells(report, "triage reason", "not_english")[:2] == (2, 2)
    assert [g.name for g in report.dimension("channel")] == ["social", "web", "email"]
    # Priority, and channel within it: shown so that a channel gap can be told from a mix of priorities.
    assert [g.name for g in report.dimension("priority and channel")] == ["P3 social", "P3 web", "P3 email"]
    assert _cells(report, "priority and channel", "P3 web") == _cells(report, "channel", "web")
    assert _cells(report, "priority", "P3")[:2] == (18, 17)


def test_resolution_comes_from_the_status_timeline(report: Report) -> None:
    web = report.group("channel", "web")
    assert web is not None
    # 2, 3 (then closed), 6 (solved again after reopening), 8 and 20 hours.
    assert (web.resolution.n, web.resolution.p50, web.resolution.p90) == (5, 6 * HOUR, pytest.approx(15.2 * HOUR))
    x = report.group("platform", "x")
    assert x is not None and (x.resolution.n, x.resolution.p50) == (1, 5 * HOUR)  # the reopened one is not resolved


def test_reply_coverage_by_platform(report: Report) -> None:
    x, bluesky = report.group("platform", "x"), report.group("platform", "bluesky")
    assert x is not None and bluesky is not None
    assert (x.replies, x.coverage) == (4, 0.8) and (bluesky.replies, bluesky.coverage) == (6, 1.0)
    channel = report.group("channel", "social")
    assert channel is not None and channel.coverage is None  # coverage is a platform figure


def test_keyword_search_hits_are_not_due_a_reply(engine: Engine) -> None:
    with transaction(session_factory(engine)) as s:
        for n in range(4):
            _ticket(s, "social", platform="x", replied=n < 3)
        _ticket(s, "social", platform="x", found_by="search")  # the platforms' rules: never answered
    with transaction(session_factory(engine)) as session:
        x = build_report(session=session, since=SINCE, until=UNTIL).group("platform", "x")
    assert x is not None and (x.tickets, x.answerable, x.replies, x.coverage) == (5, 4, 3, 0.75)


def test_the_verdict_names_the_slower_channel_and_says_when_data_is_short(report: Report) -> None:
    said = verdicts(report)
    assert "Social tickets wait 2.0x longer for a first response than web tickets at p50 (2.0 h vs 1.0 h)." in said
    assert (
        "Tickets from x wait 1.5x longer for a first response than tickets from bluesky at p50 (3.0 h vs 2.0 h)."
        in said
    )
    assert any(s.startswith("Not enough data to compare tickets with and without human triage on first") for s in said)
    assert "Public replies reached 100% of complaints on bluesky but only 80% on x." in said


def test_a_period_without_tickets_says_not_enough_data(engine: Engine) -> None:
    with transaction(session_factory(engine)) as session:
        empty = build_report(session=session, since=SINCE, until=UNTIL)
    assert verdicts(empty) == ["Not enough data: no tickets were filed in this period."]
    assert _cells(empty, "channel", "social") == (0, 0, None, None)


def test_alike_channels_are_called_alike(engine: Engine) -> None:
    with transaction(session_factory(engine)) as s:
        for channel in ("social", "web"):
            for hours in (1, 1, 1.1, 1.1, 1.2):
                _ticket(s, channel, platform="x" if channel == "social" else None, responded=hours, by_mail=True)
    with transaction(session_factory(engine)) as session:
        said = verdicts(build_report(session=session, since=SINCE, until=UNTIL))
    alike = "Channels are served alike on first response: p50 within 25% or a minute of each other"
    assert f"{alike} (social 1.1 h, web 1.1 h)." in said


def test_medians_less_than_a_minute_apart_are_alike_whatever_their_ratio(engine: Engine) -> None:
    with transaction(session_factory(engine)) as s:
        for channel, seconds in (("social", 50), ("web", 30)):
            for _ in range(5):
                _ticket(s, channel, platform="x" if channel == "social" else None, responded=seconds / 3600)
    with transaction(session_factory(engine)) as session:
        said = verdicts(build_report(session=session, since=SINCE, until=UNTIL))
    alike = "Channels are served alike on first response: p50 within 25% or a minute of each other"
    assert said[0] == f"{alike} (web 30 s, social 50 s)."


def test_csv_has_one_row_per_group_in_fixed_columns(report: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_text(report))))
    assert tuple(rows[0]) == CSV_COLUMNS
    x = next(r for r in rows if (r["dimension"], r["group"]) == ("platform", "x"))
    assert (x["tickets"], x["first_response_p50_s"], x["first_response_p90_s"]) == ("5", "10800", "27360")
    assert (x["answerable"], x["public_replies"], x["reply_coverage"]) == ("5", "4", "0.800")
    assert x["period_start"] == SINCE.isoformat()
    assert len(rows) == len(report.groups)


def test_the_anonymous_export_suppresses_small_cells_and_what_would_give_them_away(report: Report) -> None:
    public = anonymous(report)
    rows = {(r["dimension"], r["group"]): r for r in csv.DictReader(io.StringIO(csv_text(public)))}
    # email has 2 tickets: suppressed; web (5) too, or social = all - web - email would reveal it.
    assert rows[("channel", "email")]["tickets"] == "suppressed"
    assert rows[("channel", "email")]["first_response_p50_s"] == "suppressed"
    assert rows[("channel", "web")]["tickets"] == "suppressed"
    assert rows[("channel", "social")]["tickets"] == "11"
    assert rows[("channel", "social")]["first_response_p50_s"] == "7200"
    # 3 triaged tickets: suppressed, and so is the other side of that split.
    assert rows[("triage", "needed")]["tickets"] == rows[("triage", "not needed")]["tickets"] == "suppressed"
    assert rows[("triage reason", "not_english")]["first_response_p90_s"] == "suppressed"
    # Cross-tabulations are left out: P3 minus P3 social would give P3 web back.
    assert not [key for key in rows if key[0] == "priority and channel"] and rows[("priority", "P3")]["tickets"] == "18"
    assert rows[("triage", "needed")]["public_replies"] == rows[("channel", "email")]["reply_coverage"] == ""  # n/a
    # 5 and 6 tickets: both shown, but x's 4 replies are a small cell (one complaint went unanswered), so its
    # coverage goes, and bluesky's with it.
    assert rows[("platform", "x")]["tickets"] == "5" and rows[("platform", "bluesky")]["tickets"] == "6"
    assert rows[("platform", "x")]["reply_coverage"] == rows[("platform", "bluesky")]["public_replies"] == "suppressed"
    email = public.group("channel", "email")
    assert email is not None and email.tickets == 0 and email.first_response.p50 is None  # the figure is gone
    text = table_text(public) + csv_text(public) + "\n".join(verdicts(public))
    for secret in (HANDLE, "script", "router", POST, "brand_account", "0" * 63):
        assert secret not in text
    said = " ".join(verdicts(public))
    assert "(answered: social 11, web suppressed, email suppressed)" in said


def test_the_terminal_table_shows_every_group_and_the_verdict(report: Report) -> None:
    text = table_text(report)
    assert "channel: social" in text and "platform: bluesky" in text and "triage reason: emoji_only" in text
    assert "priority and channel: P3 social " in text
    assert "- Social tickets wait 2.0x longer for a first response" in text
    line = next(line for line in text.splitlines() if line.startswith("platform: x"))
    cells = ["platform:", "x", "5", "5", "3.0", "h", "7.6", "h", "1", "5.0", "h", "5.0", "h", "5", "4", "80%"]
    assert line.split() == cells


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("2026-11-01", "2026-11-07", (SINCE, UNTIL)),  # a date as the end: the whole day
        ("2026-11-01T09:00", "2026-11-01T10:30+01:00", (SINCE + timedelta(hours=9), SINCE + timedelta(hours=9.5))),
        (None, None, (UNTIL - timedelta(days=30), UNTIL)),
    ],
)
def test_the_period_as_typed(since: str | None, until: str | None, expected: tuple[datetime, datetime]) -> None:
    assert parse_period(since, until, now=UNTIL) == expected


@pytest.mark.parametrize(("since", "until"), [("yesterday", None), ("2026-11-08", "2026-11-01")])
def test_a_wrong_period_is_refused_with_its_reason(since: str, until: str | None) -> None:
    with pytest.raises(ValueError, match="not a date|period is empty"):
        parse_period(since, until, now=UNTIL)


def test_tickets_per_incident(engine: Engine) -> None:
    with transaction(session_factory(engine)) as s:
        for size in (2, 2, 3, 4, 9):
            incident = Incident(subject="outage", body="outage", priority=2)
            s.add(incident)
            s.flush()
            for _ in range(size):
                _ticket(s, "social", platform="x").incident_id = incident.id
        _ticket(s, "social", platform="x", filed=SINCE - timedelta(hours=1)).incident_id = incident.id  # before
        _ticket(s, "web")
        _ticket(s, "web")
    with transaction(session_factory(engine)) as session:
        report = build_report(session=session, since=SINCE, until=UNTIL)
    inc = report.incidents
    assert (inc.incidents, inc.tickets, inc.alone, inc.largest) == (5, 20, 2, 9)
    # 2, 2, 3, 4, 9: median 3; p90 at rank 3.6: 4 + 0.6 * 5 = 7.
    assert (inc.per_incident.p50, inc.per_incident.p90) == (3, pytest.approx(7))
    assert "Incidents: 5 gathered 20 tickets; tickets per incident p50 3, p90 7, largest 9." in table_text(report)
    all_row = next(csv.DictReader(io.StringIO(csv_text(anonymous(report)))))
    assert (all_row["dimension"], all_row["incidents"], all_row["tickets_per_incident_p50"]) == ("all", "5", "3")
    assert all_row["tickets_in_incidents"] == "suppressed"  # 2 tickets in none would follow from 22 - 20
