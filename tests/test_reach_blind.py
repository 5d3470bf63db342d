"""Reach-blind by construction: no field can hold reach, and reach in any raw payload changes nothing fairdesk does.

The property runs each example on fresh fairdesks (a new data dir and database per run) and compares everything
they produced, byte for byte: tickets and priorities, the timeline, the ledger, the public replies as posted, and
every request sent to the rt, zendesk, zammad and webhook helpdesks (tests/reach/harness.py). Every example must
open a ticket, so two empty results can never pass. tests/test_reach_blind_check.py shows the check failing when
an adapter lets reach through.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairdesk.listener.base import MENTION_FIELDS, Mention
from fairdesk.listener.sample import BUNDLED_FEED, load_feed
from fairdesk.ticketing.models import Ticket
from tests.fakes.x_server import FakeXServer
from tests.reach.harness import HELPDESKS, reach_difference
from tests.reach.platforms import Scenario, bluesky_platform, reach, sample_platform, volunteer_reach, x_platform
from tests.support import fake_classify

REACH_WORDS = re.compile(
    r"follow|verif|metric|influen|impression|like|retweet|repost_count|listed|reach|bio|profile|raw"
)
EXAMPLES = int(os.environ.get("REACH_EXAMPLES", "200"))  # a quick local run may ask for fewer
_FEED = [p for p in load_feed(BUNDLED_FEED) if p.get("kind", "mention") == "mention"]
COMPLAINTS = sorted({p["text"] for p in _FEED if fake_classify([p["text"]])[0].label == "complaint"})
ANY_TEXT = sorted({p["text"] for p in _FEED})
# Words added to the feed's texts: printable, no handles or links (the complaint must stay the same complaint).
extra = st.text(st.characters(codec="utf-8", categories=("L", "N", "Zs", "P", "So")), max_size=24).map(
    lambda s: re.sub(r"[@＠/]", " ", s)
)
scenarios = st.builds(
    Scenario,
    text=st.builds(lambda text, more: f"{text} {more}".strip(), st.sampled_from(COMPLAINTS), extra),
    followup=st.builds(lambda text, more: f"{text} {more}".strip(), st.sampled_from(ANY_TEXT), extra),
)
salts = st.uuids().map(lambda u: u.hex[:12])
FRESH = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_the_type_that_leaves_listener_has_no_field_that_could_hold_reach() -> None:
    assert not [name for name in MENTION_FIELDS if REACH_WORDS.search(name)]
    assert set(MENTION_FIELDS) == {
        "platform",
        "account",
        "post_id",
        "author_id",
        "author_handle",
        "text",
        "created_at",
        "url",
        "kind",
        "found_by",
        "addresses_account",
        "from_account",
        "reply_to_id",
        "conversation_id",
        "lang",
    }
    for f in dataclasses.fields(Mention):
        assert f.type in ("str", "str | None", "bool", "datetime", "MentionKind", "FoundBy"), f.name


def test_the_ticket_table_has_no_column_that_could_hold_reach() -> None:
    assert not [c for c in Ticket.__table__.columns.keys() if REACH_WORDS.search(c)]


def test_the_scenarios_are_complaints() -> None:
    assert len(COMPLAINTS) >= 10


@pytest.fixture(scope="module")
def shared_x() -> Iterator[FakeXServer]:
    """One fake X server for all examples (starting one per run would dominate the time); each example posts as a
    new author and deletes its posts afterwards, and each run still gets a fresh fairdesk."""
    with FakeXServer() as server:
        yield server


@pytest.mark.slow
@FRESH
@given(
    source=st.sampled_from(["sample", "x", "bluesky"]),
    helpdesk=st.sampled_from(HELPDESKS),
    scenario=scenarios,
    reach_a=reach,
    reach_b=reach,
    salt=salts,
)
def test_payloads_differing_only_in_reach_give_identical_tickets_replies_deliveries_and_priorities(
    shared_x: FakeXServer,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    helpdesk: str,
    scenario: Scenario,
    reach_a: dict,
    reach_b: dict,
    salt: str,
) -> None:
    """Each example: one platform's raw payloads (sample feed JSON lines, X wire JSON through the real XAdapter and
    the fake X server, Bluesky records and notifications through the real BlueskyAdapter and a fake PDS) with two
    different reaches, each run on a fresh fairdesk filing into one of the helpdesk clients."""
    retire = None
    if source == "sample":
        platform = sample_platform(scenario, salt)
    elif source == "x":
        volunteer_reach(monkeypatch)  # the server sends followers, verification and metrics though never asked
        platform, retire = x_platform(shared_x, scenario, salt)
    else:
        platform = bluesky_platform(scenario, int(salt, 16) % 10**12)
    try:
        diff, tickets = reach_difference(platform, reach_a, reach_b, [helpdesk])
    finally:
        if retire is not None:
            retire()
    assert diff == ""
    assert tickets == 1
