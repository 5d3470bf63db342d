"""/agent/report in headless Chromium (Debian's, driven by Playwright): the form, the drawn charts, contrast, safety."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.web.conftest import Site
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, CONTRAST_JS, DESKTOP, contrast, log_in
from tests.web.test_report import HOSTILE, _seed

pytestmark = pytest.mark.browser


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only, as for the other browser tests; the page's database code runs on both in tests/web/test_report."""
    return f"sqlite:///{tmp_path / 'fairdesk.db'}"


def test_an_agent_picks_a_period_and_reads_the_charts(site: Site) -> None:
    from playwright.sync_api import sync_playwright

    _seed(site)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/browser`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(base_url=site.base, **DESKTOP).new_page()
            elsewhere: list[str] = []
            page.route(
                re.compile(r"^(?!" + re.escape(site.base) + r"/|data:)"),
                lambda route: (elsewhere.append(route.request.url), route.abort()),
            )
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            log_in(page)
            page.get_by_role("link", name="Fairness report").click()
            page.get_by_label("From").fill("2026-11-01")
            page.get_by_label("To (included)").fill("2026-11-07")
            page.get_by_role("button", name="Show").click()
            page.wait_for_url(re.compile(r"since=2026-11-01&until=2026-11-07"))

            assert page.locator("#period strong").inner_text() == "18"
            verdict = page.locator("#verdict").inner_text()
            assert "Social tickets wait 2.0x longer for a first response than web tickets at p50" in verdict
            bars = page.locator("#chart-first_response rect")
            assert bars.count() == 2 * 6  # median and p90 for social, web, email, x, the other platform, untriaged
            box = page.locator("#chart-first_response").bounding_box()
            assert box is not None and box["width"] > 500 and box["height"] > 100
            assert page.locator("#table-coverage").get_by_text(HOSTILE, exact=True).count() == 1
            assert page.evaluate("typeof window.pwned") == "undefined" and not dialogs

            failures = []
            for item in page.evaluate(CONTRAST_JS):
                large = item["size"] >= 24 or (item["size"] >= 18.66 and item["bold"])
                if contrast(item["fg"], item["bg"]) < (3.0 if large else 4.5):
                    failures.append(item["text"])
            assert not failures and not elsewhere
        finally:
            browser.close()
