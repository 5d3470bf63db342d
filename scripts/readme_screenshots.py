"""Takes the README's agent screenshots from the demo, not from test data.

Runs `fairdesk run` on the embedded default (SQLite, the bundled sample feed) in a temporary folder, waits until the
sample feed has been read and replied to, sends two posts through the web form, answers a few tickets the way an
agent would, and saves the queue, a ticket, the dashboard and an incident (when the demo made one) into
docs/screenshots/, with Debian's chromium driven by Playwright.

    source scripts/env.sh && fairdesk_venv test && python scripts/readme_screenshots.py
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "screenshots"
AGENT, PASSWORD = "alex", "demo-password-for-screenshots"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_replies(base: str, proc: subprocess.Popen[str], seconds: float = 120) -> dict[str, object]:
    deadline, last, health = time.monotonic() + seconds, -1, {}
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            health = httpx.get(f"{base}/healthz", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        replies = health.get("replies", {})
        sent = int(replies.get("sent", 0))
        if sent and sent == last and not replies.get("pending"):
            return health
        last = sent
        time.sleep(2)
    raise SystemExit(f"readme_screenshots: the demo did not settle: {health}")


def _shot(page: Page, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)
    print(f"readme_screenshots: docs/screenshots/{name}.png")


def _agent_work(page: Page, base: str) -> None:
    """Answer a few tickets as an agent: a note and a status change on the first three in the queue."""
    links = page.locator("tr.ticket-row a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    for href in links[:3]:
        page.goto(base + href)
        page.locator("#new-status").select_option("pending")
        page.locator("#change-status").click()
        page.wait_for_load_state()


def main() -> None:
    chromium = "/usr/bin/chromium"
    if not Path(chromium).exists():
        raise SystemExit("readme_screenshots: /usr/bin/chromium is missing: run `bash scripts/browser`")
    fairdesk = shutil.which("fairdesk") or sys.exit("readme_screenshots: run it in the project's virtualenv")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="fairdesk-shots-") as tmp:
        config = Path(tmp) / "fairdesk.toml"
        config.write_text(
            f'data_dir = "{Path(tmp) / "data"}"\npublic_url = "{base}"\n[web]\nport = {port}\n'
            "[reply]\ninterval_seconds = 0.5\n[sample.demo]\npoll_seconds = 0.5\nper_poll = 20\n",
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRDESK_")}
        subprocess.run(
            [fairdesk, "agent", "add", AGENT, "--config", str(config), "--password-stdin"],
            input=PASSWORD + "\n",
            text=True,
            check=True,
            env=env,
            capture_output=True,
        )
        proc = subprocess.Popen(
            [fairdesk, "run", "--config", str(config)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            health = _wait_for_replies(base, proc)
            print(f"readme_screenshots: demo settled: {health.get('replies')}")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_context(**DESKTOP).new_page()
                for subject, text in (
                    ("Refund", "I was charged twice for November and I am still waiting for the refund."),
                    ("Router", "The router light blinks red and nothing connects since this morning."),
                ):
                    page.goto(f"{base}/contact")
                    page.get_by_label("Your email").fill("sam@example.com")
                    page.get_by_label("Subject").fill(subject)
                    page.get_by_label("What happened?").fill(text)
                    page.get_by_role("button", name="Send").click()
                    page.locator("#ticket-link").wait_for()
                page.goto(f"{base}/agent/login")
                page.get_by_label("Name").fill(AGENT)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url(re.compile(r"/agent$"))
                _agent_work(page, base)
                page.goto(f"{base}/agent")
                _shot(page, "agent-queue")
                first = page.locator("tr.ticket-row a").first.get_attribute("href")
                page.goto(base + str(first))
                _shot(page, "agent-ticket")
                page.goto(f"{base}/agent/dashboard")
                _shot(page, "dashboard")
                page.goto(f"{base}/agent")
                incident = page.locator("tr.incident-row a").first
                if incident.count():
                    page.goto(base + str(incident.get_attribute("href")))
                    _shot(page, "agent-incident")
                browser.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
