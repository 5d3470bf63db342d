"""Both pages in headless Chromium (Debian's, driven by Playwright): a phone customer, an agent, a11y and safety."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.web.conftest import AGENT, PASSWORD, Site
from tests.web.seed import seed_history

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
# Read at import: the autouse clean_environ fixture hides FAIRDESK_* variables from the tests themselves.
UPDATE_DOCS = os.environ.get("FAIRDESK_UPDATE_SCREENSHOTS") == "1"
DETAIL = "Order 4411: the router light blinks red, nothing connects"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The browser tests run on SQLite only; the pages' database code is covered on both by the HTTP tests."""
    return f"sqlite:///{tmp_path / 'fairdesk.db'}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, launched once per module (never a downloaded browser: `bash scripts/browser` installs it)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: run `bash scripts/browser`")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/browser`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Pages:
    """Opens browser contexts that may only talk to the site under test; any other request is blocked and recorded."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.browser, self.base = browser, base
        self.contexts: list[BrowserContext] = []
        self.requests: list[str] = []
        self.blocked: list[str] = []

    def open(self, **options: Any) -> Page:
        context = self.browser.new_context(base_url=self.base, **options)
        context.route("**/*", self._guard)
        context.on("request", lambda request: self.requests.append(request.url))
        self.contexts.append(context)
        return context.new_page()

    def _guard(self, route: Any) -> None:
        url = route.request.url
        if url.startswith((self.base + "/", "data:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser, site: Site) -> Iterator[Pages]:
    opened = Pages(browser, site.base)
    try:
        yield opened
    finally:
        opened.close()
    assert opened.requests, "the browser made no requests at all"
    assert not opened.blocked, f"requests to other hosts: {opened.blocked}"
    assert all(u.startswith((site.base + "/", "data:")) for u in opened.requests)


def screenshot(page: Page, name: str, *, readme: bool = True) -> None:
    """Saved under test-artifacts/; FAIRDESK_UPDATE_SCREENSHOTS=1 also refreshes the README copies in docs/.

    The agent pages' README copies come from the demo instead (scripts/readme_screenshots.py): `readme=False`.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    if UPDATE_DOCS and readme:
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, DOCS / f"{name}.png")


def log_in(page: Page) -> None:
    page.goto("/agent/login")
    page.get_by_label("Name").fill(AGENT)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/agent$"))


def test_phone_customer_sends_details_and_the_agent_works_the_ticket(site: Site, pages: Pages) -> None:
    token, ticket = site.tokens["1"], site.ticket("1")
    phone = pages.open(**PHONE)
    phone.goto(f"/t/{token}")
    assert phone.locator(".ref").inner_text() == ticket.ref
    assert phone.locator("#status").inner_text() == "new"
    assert "router is broken" in phone.locator("#post").inner_text()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling on a phone
    screenshot(phone, "customer-phone")

    phone.get_by_label("Order or account number").fill("4411")
    phone.get_by_label("What happened?").fill(DETAIL)
    phone.get_by_label("Email, to continue the conversation by email").fill("fam@example.com")
    phone.get_by_label("I agree that my social media handle").check()
    phone.get_by_role("button", name="Send to support").click()
    phone.locator("#confirmation").wait_for()
    assert DETAIL not in phone.content() and "fam@example.com" not in phone.content()
    screenshot(phone, "customer-phone-sent")

    desk = pages.open(**DESKTOP)
    log_in(desk)
    desk.get_by_label("Channel").select_option("social")
    desk.get_by_label("Category").select_option("outage")
    desk.get_by_role("button", name="Filter").click()
    desk.wait_for_url(re.compile(r"category=outage"))
    rows = desk.locator("tr.ticket-row")
    assert rows.count() == 1 and rows.first.locator("td").first.inner_text() == ticket.ref
    assert "famous_person" not in desk.content()  # blind triage: a pseudonym until revealed

    desk.get_by_role("link", name=ticket.ref).click()
    assert DETAIL in desk.locator("#details").inner_text()
    assert desk.locator("#customer").inner_text().startswith("customer-")
    desk.get_by_role("button", name="Reveal handle (logged)").click()
    assert desk.locator("#customer").inner_text() == "@famous_person"
    assert "reveal by alex" in desk.locator("#timeline li.entry-reveal").inner_text()
    desk.get_by_label("Status", exact=True).select_option("pending")
    desk.get_by_role("button", name="Change status").click()
    assert desk.locator("#status").inner_text() == "pending"
    assert "status by alex" in desk.locator("#timeline li.entry-status").last.inner_text()

    phone.reload()
    assert phone.locator("#status").inner_text() == "pending"
    assert "Status: pending" in phone.locator("#timeline").inner_text()


def test_screenshots_of_both_pages_for_the_readme(site: Site, pages: Pages) -> None:
    seed_history(site.daemon.sessions, agent=AGENT)
    desk = pages.open(**DESKTOP)
    desk.goto(f"/t/{site.tokens['2']}")
    screenshot(desk, "customer-desktop")
    desk.goto("/contact")
    desk.get_by_label("Your email").fill("sam@example.com")
    desk.get_by_label("Subject").fill("Refund")
    desk.get_by_label("What happened?").fill("I was charged twice and I am still waiting for the refund.")
    desk.get_by_role("button", name="Send").click()
    desk.locator("#ticket-link").wait_for()
    desk.goto(f"/t/{site.tokens['3']}")
    desk.get_by_label("Order or account number").fill("D-20931")
    desk.get_by_label("What happened?").fill("The parcel was due on Friday. Tracking has said 'waiting' since.")
    desk.get_by_label("Email, to continue the conversation by email").fill("owl@example.com")
    desk.get_by_label("I agree that my social media handle").check()
    desk.get_by_role("button", name="Send to support").click()
    desk.locator("#confirmation").wait_for()
    log_in(desk)
    assert desk.locator("tr.ticket-row").count() == 5  # four social tickets and the web one, in one queue
    screenshot(desk, "agent-queue", readme=False)
    desk.goto(f"/agent/tickets/{site.ticket('3').id}")
    desk.get_by_label("Message to owl@example.com").fill(
        "Sorry about that. A new parcel leaves today; here is the tracking number: 88 123 456."
    )
    desk.get_by_role("button", name="Send email").click()
    assert desk.locator("#flash").inner_text() == "Email sent."
    assert [m["To"] for m in site.sink.messages] == ["owl@example.com"]
    screenshot(desk, "agent-ticket", readme=False)
    desk.goto("/agent/dashboard")
    assert desk.locator("#chart-per-day rect").count() > 10
    assert desk.locator("#chart-response rect").count() == 6  # median and p90 for each of three channels
    screenshot(desk, "dashboard", readme=False)
    for name in ("customer-desktop", "agent-queue", "agent-ticket", "dashboard"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000


@pytest.mark.parametrize(("path", "button"), [("/contact", "Send"), ("/agent/login", "Log in")])
def test_on_a_desktop_the_submit_button_sits_below_the_last_field(
    site: Site, pages: Pages, path: str, button: str
) -> None:
    page = pages.open(**DESKTOP)
    page.goto(path)
    form = page.locator("main form").first
    last_field = form.locator("input:not([type=hidden]), textarea, select").last.bounding_box()
    submit = form.get_by_role("button", name=button).bounding_box()
    assert last_field and submit
    assert submit["y"] >= last_field["y"] + last_field["height"], (last_field, submit)
    assert abs(submit["x"] - last_field["x"]) < 2, "the button lines up with the fields, on its own line"


def test_keyboard_reaches_every_field_and_the_button_with_a_visible_focus(site: Site, pages: Pages) -> None:
    page = pages.open(**PHONE)
    page.goto(f"/t/{site.tokens['1']}")
    order: list[str] = []
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id || document.activeElement.tagName")
        order.append(focused)
        if focused == "send":
            break
    wanted = ["order_number", "details", "email", "consent", "send"]
    assert [f for f in order if f in wanted] == wanted
    outline = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor]; })()"
    )
    assert outline[0] == "solid" and outline[1] >= 2
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "consent"
    unfocused = page.evaluate("getComputedStyle(document.getElementById('send')).outlineStyle")
    assert unfocused == "none"  # the outline is the focus indicator, not a permanent border


CONTRAST_JS = """
() => {
  const parse = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const bgOf = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const rect = el.getBoundingClientRect();
    if (!own || rect.width === 0 || rect.height === 0) continue;
    const s = getComputedStyle(el);
    if (s.visibility === 'hidden' || s.display === 'none') continue;
    const svgText = el instanceof SVGElement;
    out.push({text: el.textContent.trim().slice(0, 40), fg: parse(svgText ? s.fill : s.color).slice(0, 3),
              bg: bgOf(el), size: parseFloat(s.fontSize), bold: parseInt(s.fontWeight) >= 700});
  }
  return out;
}
"""


def _luminance(rgb: list[float]) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: list[float], bg: list[float]) -> float:
    """The WCAG 2 contrast ratio of two sRGB colours, 1..21."""
    high, low = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula() -> None:
    assert round(contrast([0, 0, 0], [255, 255, 255]), 1) == 21.0
    assert round(contrast([0x76, 0x76, 0x76], [255, 255, 255]), 2) == 4.54


def test_text_colours_meet_wcag_aa_contrast_on_every_page(site: Site, pages: Pages) -> None:
    seed_history(site.daemon.sessions, agent=AGENT, days=3)
    page = pages.open(**DESKTOP)
    page.goto(f"/t/{site.tokens['1']}")
    checked = page.evaluate(CONTRAST_JS)
    log_in(page)
    for path in ("/agent", f"/agent/tickets/{site.ticket('1').id}", "/agent/dashboard"):
        page.goto(path)
        checked += page.evaluate(CONTRAST_JS)
    failures = []
    for item in checked:
        large = item["size"] >= 24 or (item["size"] >= 18.66 and item["bold"])
        ratio = contrast(item["fg"], item["bg"])
        if ratio < (3.0 if large else 4.5):
            failures.append((item["text"], round(ratio, 2)))
    assert len(checked) > 50 and not failures


def test_a_script_in_a_post_or_the_form_stays_text(site: Site, pages: Pages) -> None:
    token, ticket = site.tokens["4"], site.ticket("4")
    page = pages.open(**DESKTOP)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/t/{token}")
    assert "<script>window.pwned=1</script>" in page.locator("#post").inner_text()
    hostile = "<script>window.pwned=3</script><img src=x onerror=alert(4)>"
    page.get_by_label("What happened?").fill(hostile)
    page.get_by_role("button", name="Send to support").click()
    page.locator("#confirmation").wait_for()
    log_in(page)
    page.goto(f"/agent/tickets/{ticket.id}")
    assert hostile in page.locator("#details").inner_text()
    assert "<script>window.pwned=1</script>" in page.locator("#post").inner_text()
    assert page.evaluate("typeof window.pwned") == "undefined" and not dialogs
    assert page.locator("script").count() == 0


def test_posts_without_the_csrf_token_are_refused(site: Site, pages: Pages) -> None:
    token, ticket = site.tokens["2"], site.ticket("2")
    page = pages.open(**DESKTOP)
    page.goto(f"/t/{token}")  # the browser holds a session cookie, but the posts below leave the token out
    refused = page.request.post(f"/t/{token}", form={"details": "no token"})
    assert refused.status == 403
    log_in(page)
    action = page.request.post(f"/agent/tickets/{ticket.id}", form={"action": "status", "status": "closed"})
    assert action.status == 403
    page.goto(f"/agent/tickets/{ticket.id}")
    assert page.locator("#status").inner_text() == "new"
    assert site.ticket("2").status == "new"
