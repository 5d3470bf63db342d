"""The /sample page: each reply's link is one a visitor can follow, and nothing in a reply becomes markup."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from fairdesk.app import build
from fairdesk.config.settings import ReplySettings, SampleAccount, Settings
from tests.support import fake_classify

HOSTILE = '<b>bold</b> <script>alert(1)</script> <a href="https://evil.example">win</a> "{ref}" & co: {link} <i>x'
TOKEN = re.compile(r"/t/([A-Za-z0-9_-]{22,})")


def test_reply_links_on_the_sample_page_are_clickable_and_the_rest_stays_text(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        public_url="https://support.example.com",
        sample={"demo": SampleAccount(per_poll=12)},
        reply=ReplySettings(template=HOSTILE),
    )
    daemon = build(settings, classify=fake_classify)
    try:
        daemon.poll_all()
        while daemon.send_replies():
            pass
        with TestClient(daemon.web_app) as client:
            page = client.get("/sample")
    finally:
        daemon.close()
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    replies = soup.select(".reply-text")
    assert len(replies) >= 2
    for reply in replies:
        (link,) = reply.find_all("a")  # the customer's page, and not the link the reply text pretends to have
        token = TOKEN.search(link.text)
        assert token is not None and link.text.startswith("https://support.example.com/t/")
        assert link["href"] == f"/t/{token.group(1)}"  # this site's page, wherever public_url points
        assert reply.find_all(["b", "i", "script"]) == []
        text = reply.get_text()
        assert '<b>bold</b> <script>alert(1)</script> <a href="https://evil.example">win</a> "FD-' in text
        assert text.endswith(f"& co: {link.text} <i>x")
    assert soup.find("script") is None and "evil.example" not in {a.get("href") for a in soup.find_all("a")}
