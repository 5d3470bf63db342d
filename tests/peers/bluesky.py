"""Pytest fixtures and a plain-XRPC client for the local Bluesky network started by scripts/bluesky-network."""

from __future__ import annotations

import itertools
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bluesky-network"
PDS_ENV = "FAIRDESK_BLUESKY_PDS"  # use a network that is already up at this URL instead of starting one
KEEP_ENV = "FAIRDESK_BLUESKY_KEEP"  # leave a network this session started running afterwards
DEFAULT_PDS = "http://localhost:2583"
PASSWORD = "fairdesk-test-password"
RUN_ID = secrets.token_hex(3)  # handles are unique per test run, so a long-running network can be reused
_SERIAL = itertools.count(1)  # module-wide: every peer in the run draws from it
START_TIMEOUT = 900  # a cold install downloads ~660 npm packages first

T = TypeVar("T")


@dataclass(frozen=True)
class Account:
    """A Bluesky account on the local network, with a live session."""

    handle: str
    did: str
    password: str
    access_jwt: str


@dataclass(frozen=True)
class PostRef:
    uri: str
    cid: str


@dataclass(frozen=True)
class BlueskyAccounts:
    """The session's brand and customer; ``brand_app_password`` is what the adapter logs in with."""

    brand: Account
    customer: Account
    brand_app_password: str


class BlueskyPeer:
    """Acts as any user of the local network with plain XRPC calls (no atproto SDK: it checks the adapter's work).

    Example::

        peer = BlueskyPeer("http://localhost:2583")
        brand, alice = peer.create_account("brand"), peer.create_account("alice")
        post = peer.post(alice, "hi ", mention=brand, after=" my parcel is lost")
        thread = peer.wait_for(lambda: peer.thread(alice, post.uri)["replies"], "a reply")
    """

    def __init__(self, pds_url: str) -> None:
        self.pds_url = pds_url.rstrip("/")
        self.http = httpx.Client(base_url=f"{self.pds_url}/xrpc", timeout=15.0)

    def close(self) -> None:
        self.http.close()

    # accounts

    def create_account(self, prefix: str) -> Account:
        """A new account ``<prefix><run id><n>.test``, once the AppView has indexed it."""
        handle = f"{prefix[:6]}{RUN_ID}{next(_SERIAL)}.test"
        data = self._post(
            "com.atproto.server.createAccount",
            None,
            {"handle": handle, "email": f"{handle}@example.com", "password": PASSWORD},
        )
        account = Account(handle=data["handle"], did=data["did"], password=PASSWORD, access_jwt=data["accessJwt"])
        self.wait_for(lambda: self._profile_indexed(account), f"{handle} indexed by the AppView")
        return account

    def app_password(self, account: Account, name: str = "fairdesk") -> str:
        return self._post("com.atproto.server.createAppPassword", account, {"name": name})["password"]

    def _profile_indexed(self, account: Account) -> bool:
        res = self.http.get("app.bsky.actor.getProfile", params={"actor": account.did}, headers=_auth(account))
        return res.status_code == 200

    # posts

    def post(
        self,
        author: Account,
        before: str,
        *,
        mention: Account | None = None,
        after: str = "",
        reply_to: str | None = None,
        quote: PostRef | None = None,
        langs: list[str] | None = None,
        created_at: datetime | None = None,
    ) -> PostRef:
        """Post ``before`` + ``@mention`` (a real mention facet) + ``after``; optionally as a reply or a quote."""
        text, facets = before, []
        if mention is not None:
            tag = f"@{mention.handle}"
            start = len(before.encode())
            facets.append(
                {
                    "index": {"byteStart": start, "byteEnd": start + len(tag.encode())},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": mention.did}],
                }
            )
            text = before + tag + after
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": _iso(created_at or datetime.now(UTC)),
            "langs": langs or ["en"],
        }
        if facets:
            record["facets"] = facets
        if reply_to is not None:
            parent = self.get_post(author, reply_to)
            root = parent["record"].get("reply", {}).get("root") or {"uri": parent["uri"], "cid": parent["cid"]}
            record["reply"] = {"root": root, "parent": {"uri": parent["uri"], "cid": parent["cid"]}}
        if quote is not None:
            record["embed"] = {"$type": "app.bsky.embed.record", "record": {"uri": quote.uri, "cid": quote.cid}}
        data = self._post(
            "com.atproto.repo.createRecord",
            author,
            {"repo": author.did, "collection": "app.bsky.feed.post", "record": record},
        )
        return PostRef(data["uri"], data["cid"])

    def like(self, actor: Account, subject: PostRef) -> None:
        self._create(actor, "app.bsky.feed.like", {"subject": {"uri": subject.uri, "cid": subject.cid}})

    def repost(self, actor: Account, subject: PostRef) -> None:
        self._create(actor, "app.bsky.feed.repost", {"subject": {"uri": subject.uri, "cid": subject.cid}})

    def follow(self, actor: Account, subject: Account) -> None:
        self._create(actor, "app.bsky.graph.follow", {"subject": subject.did})

    def forbid_replies(self, author: Account, post: PostRef) -> None:
        """A threadgate on ``post`` that lets nobody reply (``allow: []``); its record key must be the post's."""
        rkey = post.uri.rsplit("/", 1)[-1]
        self._create(author, "app.bsky.feed.threadgate", {"post": post.uri, "allow": []}, rkey=rkey)

    def replies_disabled(self, viewer: Account, uri: str) -> bool:
        """Whether the AppView tells ``viewer`` it may not reply to ``uri`` (False until the post is indexed)."""
        try:
            return bool(self.get_post(viewer, uri).get("viewer", {}).get("replyDisabled"))
        except LookupError:
            return False

    def records(self, account: Account, collection: str = "app.bsky.feed.post") -> list[dict[str, Any]]:
        """Every record in ``account``'s repo collection, read from the PDS (no AppView, so no indexing lag)."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"repo": account.did, "collection": collection, "limit": 100}
            data = self._get("com.atproto.repo.listRecords", None, params | ({"cursor": cursor} if cursor else {}))
            found += data["records"]
            cursor = data.get("cursor")
            if not cursor or not data["records"]:
                return found

    def replies_in_repo(self, author: Account, parent_uri: str) -> list[dict[str, Any]]:
        """The posts in ``author``'s repo that reply directly to ``parent_uri`` (from the PDS, never lagging)."""
        return [
            r for r in self.records(author) if r["value"].get("reply", {}).get("parent", {}).get("uri") == parent_uri
        ]

    def unread_count(self, viewer: Account) -> int:
        return int(self._get("app.bsky.notification.getUnreadCount", viewer, {})["count"])

    def delete(self, author: Account, uri: str) -> None:
        self._post(
            "com.atproto.repo.deleteRecord",
            author,
            {"repo": author.did, "collection": "app.bsky.feed.post", "rkey": uri.rsplit("/", 1)[-1]},
        )

    def get_post(self, viewer: Account, uri: str) -> dict[str, Any]:
        posts = self._get("app.bsky.feed.getPosts", viewer, {"uris": [uri]})["posts"]
        if not posts:
            raise LookupError(f"{uri} not found")
        return posts[0]

    def thread(self, viewer: Account, uri: str) -> dict[str, Any]:
        return self._get("app.bsky.feed.getPostThread", viewer, {"uri": uri, "depth": 1})["thread"]

    def notifications(self, viewer: Account) -> list[dict[str, Any]]:
        return self._get("app.bsky.notification.listNotifications", viewer, {"limit": 100})["notifications"]

    # plumbing

    def _create(self, author: Account, collection: str, fields: dict[str, Any], rkey: str | None = None) -> PostRef:
        record = {"$type": collection, "createdAt": _iso(datetime.now(UTC)), **fields}
        body: dict[str, Any] = {"repo": author.did, "collection": collection, "record": record}
        if rkey is not None:
            body["rkey"] = rkey
        data = self._post("com.atproto.repo.createRecord", author, body)
        return PostRef(data["uri"], data["cid"])

    @staticmethod
    def wait_for(fn: Callable[[], T], what: str, timeout: float = 20.0, step: float = 0.05) -> T:
        """Poll ``fn`` until it returns something truthy (the AppView indexes the PDS firehose asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            value = fn()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(step)

    def _get(self, nsid: str, account: Account | None, params: dict[str, Any]) -> dict[str, Any]:
        res = self.http.get(nsid, params=params, headers=_auth(account))
        res.raise_for_status()
        return res.json()

    def _post(self, nsid: str, account: Account | None, body: dict[str, Any]) -> dict[str, Any]:
        res = self.http.post(nsid, json=body, headers=_auth(account))
        if res.status_code >= 400:
            raise RuntimeError(f"{nsid}: {res.status_code} {res.text}")
        return res.json() if res.content else {}


class CountingTransport(httpx.HTTPTransport):
    """A real HTTP transport that counts requests per XRPC method (``counts["com.atproto.server.createSession"]``)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        self.counts[method] = self.counts.get(method, 0) + 1
        return super().handle_request(request)

    def total(self) -> int:
        return sum(self.counts.values())


def _auth(account: Account | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_jwt}"} if account is not None else {}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def network_running() -> bool:
    return subprocess.run([str(SCRIPT), "status"], capture_output=True, check=False).returncode == 0


def start_network() -> None:
    subprocess.run([str(SCRIPT), "start"], check=True, timeout=START_TIMEOUT)


def stop_network() -> None:
    subprocess.run([str(SCRIPT), "stop"], check=True, timeout=60)


@pytest.fixture(scope="session")
def bluesky_pds() -> Iterator[str]:
    """The PDS URL of a local AT Protocol network: ``$FAIRDESK_BLUESKY_PDS``, a running one, or one started now.

    A network this fixture starts is stopped at the end of the session (unless FAIRDESK_BLUESKY_KEEP is set).
    Example: ``def test_x(bluesky_pds): Client(base_url=bluesky_pds)``.
    """
    given = os.environ.get(PDS_ENV)
    if given:
        yield given.rstrip("/")
        return
    started = False
    if not network_running():
        start_network()
        started = True
    try:
        yield DEFAULT_PDS
    finally:
        if started and not os.environ.get(KEEP_ENV):
            stop_network()


@pytest.fixture(scope="session")
def bluesky_peer(bluesky_pds: str) -> Iterator[BlueskyPeer]:
    """A plain-XRPC client for acting as any user on the network. Example: ``bluesky_peer.create_account("bob")``."""
    peer = BlueskyPeer(bluesky_pds)
    yield peer
    peer.close()


@pytest.fixture(scope="session")
def bluesky_accounts(bluesky_peer: BlueskyPeer) -> BlueskyAccounts:
    """A brand (with an app password) and a customer, created once per test run with unique handles.

    Example: ``BlueskyAccount(handle=bluesky_accounts.brand.handle, app_password=bluesky_accounts.brand_app_password,
    service_url=bluesky_peer.pds_url)``.
    """
    brand = bluesky_peer.create_account("brand")
    customer = bluesky_peer.create_account("cust")
    return BlueskyAccounts(brand=brand, customer=customer, brand_app_password=bluesky_peer.app_password(brand))
