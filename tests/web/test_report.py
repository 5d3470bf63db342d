"""/agent/report: the fairness report page (SVG charts with their tables, the verdict) and its CSV downloads."""

from __future__ import annotations

import csv
import io

from bs4 import BeautifulSoup

from fairdesk.ticketing.db import transaction
from tests.ticketing.test_report import HANDLE, _ticket
from tests.web.conftest import Site

PERIOD = {"since": "2026-11-01", "until": "2026-11-07"}
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="alert(2)">'


def _seed(site: Site) -> None:
    with transaction(site.daemon.sessions) as s:
        for hours in (1, 2, 3, 4, 10):
            _ticket(s, "social", platform="x", responded=hours, replied=hours != 10)
        for hours in (1, 1, 2, 2, 3, 3):
            _ticket(s, "social", platform=HOSTILE, responded=hours, replied=True)
        for hours in (0.5, 1, 1, 1, 2):
            _ticket(s, "web", responded=hours, by_mail=True, statuses=((hours + 1, "solved"),))
        _ticket(s, "email", responded=1, by_mail=True)
        _ticket(s, "email")


def test_the_page_draws_each_figure_as_svg_beside_its_table(site: Site) -> None:
    _seed(site)
    with site.client() as client:
        site.login(client)
        page = client.get("/agent/report", params=PERIOD)
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.find("script") is None and soup.find(attrs={"style": True}) is None and soup.find("style") is None
    for key in ("first_response", "resolution", "coverage"):
        chart = soup.select_one(f"#chart-{key}")
        assert chart is not None and chart.name == "svg" and chart.find("title") is not None, key
        assert chart.find_next_sibling("table")["id"] == f"table-{key}"  # type: ignore[index]
    rows = {r["data-group"]: r for r in soup.select("#table-first_response tbody tr")}
    social = rows["channel:social"]
    assert [td.text for td in social.select("td")] == ["11", "11", "2.0 h", "4.0 h"]
    assert rows["channel:web"].select_one(".p90").text == "1.6 h"
    # The chart holds the same numbers: one dark and one light bar per measured group.
    bars = soup.select("#chart-first_response rect")
    assert {b.find("title").text for b in bars} >= {"channel: social: p50 2.0 h · p90 4.0 h · n 11"}  # type: ignore[union-attr]
    within = soup.select_one('#table-priority tr[data-group="priority and channel:P3 social"] .p50')
    assert within is not None and within.text == "2.0 h"
    coverage = {r["data-group"]: r.select_one(".coverage").text for r in soup.select("#table-coverage tbody tr")}
    assert coverage == {"x": "80%", HOSTILE: "100%"}
    verdict = [li.text for li in soup.select("#verdict li")]
    assert "Social tickets wait 2.0x longer for a first response than web tickets at p50 (2.0 h vs 1.0 h)." in verdict
    # Hostile text (here a platform's name) is text in the tables, in the SVG labels and in the bars' titles.
    assert HOSTILE not in page.text and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page.text
    assert any(t.text == f"platform: {HOSTILE}" for t in soup.select("#chart-first_response text"))
    assert HANDLE not in page.text


def test_csv_downloads_full_and_anonymous(site: Site) -> None:
    _seed(site)
    with site.client() as client:
        site.login(client)
        full = client.get("/agent/report.csv", params=PERIOD)
        public = client.get("/agent/report.csv", params={**PERIOD, "anonymous": "1"})
    assert full.headers["content-type"].startswith("text/csv")
    assert 'filename="fairdesk-report-2026-11-01-to-2026-11-07.csv"' in full.headers["content-disposition"]
    assert "-anonymous.csv" in public.headers["content-disposition"]
    full_rows = {(r["dimension"], r["group"]): r for r in csv.DictReader(io.StringIO(full.text))}
    public_rows = {(r["dimension"], r["group"]): r for r in csv.DictReader(io.StringIO(public.text))}
    assert full_rows[("channel", "email")]["tickets"] == "2"
    assert public_rows[("channel", "email")]["tickets"] == "suppressed"
    assert public_rows[("platform", "x")]["first_response_p50_s"] == "10800"


def test_agents_only_and_a_wrong_period_is_explained(site: Site) -> None:
    with site.client() as client:
        assert client.get("/agent/report", follow_redirects=False).headers["location"] == "/agent/login"
        assert client.get("/agent/report.csv", follow_redirects=False).status_code == 303
        site.login(client)
        page = client.get("/agent/report", params={"since": HOSTILE})
        csv_page = client.get("/agent/report.csv", params={"since": "2026-11-09", "until": "2026-11-01"})
        default = client.get("/agent/report")
    assert page.status_code == 400 and HOSTILE not in page.text
    assert "is not a date" in BeautifulSoup(page.text, "html.parser").select_one("#error").text  # type: ignore[union-attr]
    assert csv_page.status_code == 400 and "the period is empty" in csv_page.text
    # The default period, the last 30 days, holds the fixture's four social tickets.
    soup = BeautifulSoup(default.text, "html.parser")
    assert default.status_code == 200 and soup.select_one("#period strong").text == "4"  # type: ignore[union-attr]
    assert soup.find("a", href="/agent/report") is not None  # the agent navigation links here
