"""The Bluesky adapter: mentions from listNotifications, one reply per post, through atproto (its only importer)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
from atproto import Client, Request, Session, SessionEvent, models
from atproto_client.exceptions import (
    BadRequestError,
    InvokeTimeoutError,
    LoginRequiredError,
    ModelError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    RequestException,
    UnauthorizedError,
)
from atproto_core.exceptions import AtProtocolError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from fairdesk.config.settings import BlueskyAccount, Settings
from fairdesk.listener.base import (
    AuthFailed,
    Batch,
    Mention,
    MentionKind,
    PermanentError,
    RateLimited,
    Reply,
    TransientError,
)
from fairdesk.listener.bluesky_cursor import LOOKBACK, FetchCursor, parse_time
from fairdesk.listener.bluesky_records import (
    PostFields,
    check_template,
    check_text,
    link_spans,
    raw_post_fields,
    reply_rkey,
)
from fairdesk.listener.bluesky_session import FileSessionStore, MemorySessionStore, SessionStore

__all__ = ["BlueskyAdapter", "check_template", "link_facets", "make_bluesky_adapter"]

logger = logging.getLogger(__name__)

PLATFORM = "bluesky"
PAGE_SIZE = 100  # listNotifications maximum
MAX_PAGES = 50  # per fetch; past it the batch is marked as having a gap
GET_POSTS_CHUNK = 25  # getPosts maximum
REASONS = {"mention": MentionKind.MENTION, "reply": MentionKind.REPLY, "quote": MentionKind.QUOTE}
# Asked for by name, so likes, follows and reposts are filtered out by the AppView instead of paged through here.
WANTED_REASONS = sorted(REASONS)
POST_COLLECTION = "app.bsky.feed.post"
# Bluesky's bot guidance: interact only when tagged. A quote is read and ticketed, but only mentions and replies
# to the brand are answered.
REPLYABLE = frozenset({MentionKind.MENTION, MentionKind.REPLY})
READ_ATTEMPTS = 3
HTTP_TIMEOUT = 20.0
DEFAULT_RETRY_AFTER = 60.0
AUTH_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthMissing", "BadJwt"})
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------- errors


def _xrpc_error(exc: BaseException | None) -> str | None:
    if isinstance(exc, RequestErrorBase) and exc.response is not None:
        return getattr(exc.response.content, "error", None)
    return None


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, RequestErrorBase) and exc.response is not None:
        return int(exc.response.status_code)
    return None


def _is_auth_error(exc: BaseException) -> bool:
    if isinstance(exc, UnauthorizedError):
        return _status(exc) == 401 or _xrpc_error(exc) in AUTH_ERRORS
    return isinstance(exc, BadRequestError) and _xrpc_error(exc) in AUTH_ERRORS


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (NetworkError, InvokeTimeoutError, ModelError)):
        return True
    status = _status(exc)
    return isinstance(exc, RequestException) and not isinstance(exc, RateLimitExceededError) and (status or 500) >= 500


def _retry_after(exc: RateLimitExceededError) -> float:
    if exc.retry_after is not None:
        return float(exc.retry_after)
    if exc.reset_at is not None:
        return max(float((exc.reset_at - datetime.now(UTC)).total_seconds()), 1.0)
    return DEFAULT_RETRY_AFTER


# ---------------------------------------------------------------------------------------------------- the adapter


@dataclass(frozen=True)
class _Hit:
    uri: str
    kind: MentionKind
    at: datetime  # the notification's sort time


class BlueskyAdapter:
    """One Bluesky account: mentions, replies and quotes of the brand in, one public reply per post out.

    - Session: logs in once with the app password and keeps the session string in ``session_store``; the SDK
      refreshes it before it expires. A rejected session is refreshed, and only if that fails is a new one created
      (createSession is limited to 30 per 5 minutes and 300 per day).
    - ``fetch(since)``: reads listNotifications (reasons mention, reply, quote) back to the cursor's time minus
      LOOKBACK, skips posts the cursor says were handled, reads the posts with getPosts and returns them oldest
      first. The cursor, not the platform's read state, is the record of what was handled; the read state belongs
      to the brand's team and is never changed (no updateSeen).
    - ``send_reply``: a reply record with root and parent strong refs, a link facet for every URL and the configured
      ``langs``, only to posts that addressed the brand and whose thread allows replies, once: the record key is
      derived from the post's URI (``reply_rkey``) and written only if free, so a second reply cannot exist.
    - Reach never leaves: of a post's author only the DID and handle are read.
    """

    platform = PLATFORM
    retry_wait: Any = wait_random_exponential(multiplier=0.5, max=8)  # tests set tenacity.wait_none()

    def __init__(
        self,
        name: str,
        settings: BlueskyAccount,
        *,
        session_store: SessionStore | None = None,
        client: Client | None = None,
        transport: httpx.BaseTransport | None = None,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.account = name
        self._settings = settings
        self._page_size, self._max_pages = page_size, max_pages
        self._store: SessionStore = session_store if session_store is not None else MemorySessionStore()
        self._lock = threading.RLock()
        self._did: str | None = None
        self._paused: dict[str, float] = {}  # XRPC method -> epoch seconds it may be called again
        self._replied: dict[str, str] = {}  # mention URI -> reply URI, sent by this process
        self._owns_client = client is None
        self._client = client if client is not None else self._new_client(transport)
        self._client.on_session_change(self._on_session_change)

    # -------------------------------------------------------------------------------------------- contract

    def fetch(self, since: str | None) -> Batch:
        """New mentions, replies and quotes after cursor ``since`` (``None``: the newest page), oldest first."""
        state = self._decode(since)
        hits, newest, gap = self._scan(state)
        posts = self._get_posts([hit.uri for hit in hits])
        mentions = []
        for hit in hits:
            post = posts.get(hit.uri)
            mention = self._to_mention(post, hit.kind) if post is not None else None
            if mention is not None:
                mentions.append(mention)
        cursor = (state or FetchCursor()).advanced(newest, ((hit.uri, hit.at) for hit in hits))
        logger.debug(
            "bluesky %s: fetched %d new (%d notifications gone), gap=%s",
            self.account,
            len(mentions),
            len(hits) - len(mentions),
            gap,
        )
        if gap:
            logger.warning(
                "bluesky %s: more than %d notification pages are new; older ones skipped", self.account, self._max_pages
            )
        return Batch(mentions=mentions, cursor=cursor.encode(), gap=gap)

    def send_reply(self, reply: Reply) -> str:
        """Post ``reply.text`` as a reply to the mention and return the new post's at:// URI."""
        mention = reply.in_reply_to
        if mention.platform != PLATFORM or mention.account != self.account:
            raise PermanentError(f"bluesky {self.account}: cannot reply to a {mention.platform}/{mention.account} post")
        if not mention.addresses_account or mention.from_account or mention.kind not in REPLYABLE:
            raise PermanentError(f"bluesky {self.account}: {mention.post_id} did not address the brand; not replying")
        try:
            check_text(reply.text)
        except ValueError as exc:
            raise PermanentError(f"bluesky {self.account}: the reply text {exc}") from exc
        if mention.post_id in self._replied:
            return self._replied[mention.post_id]
        post = self._get_posts([mention.post_id]).get(mention.post_id)
        if post is None:
            raise PermanentError(f"bluesky {self.account}: {mention.post_id} was deleted or is hidden; not replying")
        if post.viewer is not None and post.viewer.reply_disabled:
            # A threadgate (or a block) hides any reply: sent anyway, it would count as an answer nobody can see.
            raise PermanentError(f"bluesky {self.account}: {mention.post_id}: the thread's author allows no replies")
        parent = models.create_strong_ref(post)
        record = post.record
        root = record.reply.root if isinstance(record, models.AppBskyFeedPost.Record) and record.reply else parent
        new_record = models.AppBskyFeedPost.Record(
            created_at=self._client.get_current_time_iso(),
            text=reply.text,
            facets=link_facets(reply.text) or None,
            reply=models.AppBskyFeedPost.ReplyRef(root=root, parent=parent),
            langs=list(self._settings.reply_langs),
        )
        uri = self._put_reply(mention.post_id, new_record)
        self._replied[mention.post_id] = uri
        return uri

    def find_reply(self, mention: Mention) -> str | None:
        """The URI of this account's reply to ``mention``'s post, or None.

        Read from the brand's own repo on the PDS (getRecord at the reply's derived key), which has it the moment the
        create returns; the AppView's thread view, which lags, is asked only for replies that predate derived keys.
        """
        if mention.post_id in self._replied:
            return self._replied[mention.post_id]
        return self._reply_at_key(mention.post_id) or self._reply_in_thread(mention.post_id)

    def deleted_posts(self, post_ids: Sequence[str]) -> set[str]:
        """The ones of ``post_ids`` that Bluesky no longer serves (deleted by their author, or taken down)."""
        uris = [post_id for post_id in dict.fromkeys(post_ids) if post_id.startswith("at://")]
        found = self._get_posts(uris)
        return {uri for uri in uris if uri not in found}

    def close(self) -> None:
        if self._owns_client:
            self._client.request.close()

    # -------------------------------------------------------------------------------------------- replies

    def _put_reply(self, post_uri: str, record: models.AppBskyFeedPost.Record) -> str:
        """Write the reply at its derived key, only if that key is free; return its URI."""
        rkey = reply_rkey(post_uri)

        def put() -> Any:
            # swapRecord null means "create only if absent" (a second put gets 400 InvalidSwap). The SDK drops null
            # fields from its models, so this one body is sent as JSON itself.
            body = {
                "repo": self._did,
                "collection": POST_COLLECTION,
                "rkey": rkey,
                "record": models.get_model_as_dict(record),
                "swapRecord": None,
            }
            content = json.dumps(body, ensure_ascii=False).encode("utf-8")
            return self._client.invoke_procedure(
                "com.atproto.repo.putRecord", content=content, headers={"Content-Type": "application/json"}
            )

        try:
            # Never retried in-call: a put that timed out may have landed; the outbox settles it with find_reply.
            self._call("com.atproto.repo.putRecord", put, idempotent=False)
        except PermanentError as exc:
            if _xrpc_error(exc.__cause__) != "InvalidSwap":
                raise
            existing = self._reply_at_key(post_uri)
            if existing is None:
                raise PermanentError(
                    f"bluesky {self.account}: the reply key {rkey} for {post_uri} holds another record"
                ) from exc
            logger.info("bluesky %s: %s already has our reply %s; not posting again", self.account, post_uri, existing)
            return existing
        uri = f"at://{self._did}/{POST_COLLECTION}/{rkey}"
        logger.info("bluesky %s: replied to %s with %s", self.account, post_uri, uri)
        return uri

    def _reply_at_key(self, post_uri: str) -> str | None:
        rkey = reply_rkey(post_uri)
        try:
            res = self._call(
                "com.atproto.repo.getRecord",
                lambda: self._client.com.atproto.repo.get_record(
                    models.ComAtprotoRepoGetRecord.Params(repo=self._did, collection=POST_COLLECTION, rkey=rkey)
                ),
            )
        except PermanentError as exc:
            if _xrpc_error(exc.__cause__) == "RecordNotFound":
                return None
            raise
        reply = getattr(res.value, "reply", None)
        if reply is None or reply.parent.uri != post_uri:
            return None
        return str(res.uri)

    def _reply_in_thread(self, post_uri: str) -> str | None:
        params = models.AppBskyFeedGetPostThread.Params(uri=post_uri, depth=1, parent_height=0)
        try:
            thread = self._call(
                "app.bsky.feed.getPostThread", lambda: self._client.app.bsky.feed.get_post_thread(params)
            )
        except PermanentError as exc:
            if isinstance(exc.__cause__, BadRequestError) and _xrpc_error(exc.__cause__) == "NotFound":
                return None
            raise
        view = thread.thread
        if not isinstance(view, models.AppBskyFeedDefs.ThreadViewPost):
            return None
        for child in view.replies or []:
            if isinstance(child, models.AppBskyFeedDefs.ThreadViewPost) and child.post.author.did == self._did:
                return str(child.post.uri)
        return None

    def check(self) -> str:
        """A session (stored, refreshed or new from the app password) and one read-only call with it."""
        self._call(
            "app.bsky.notification.getUnreadCount",
            partial(self._client.app.bsky.notification.get_unread_count),
        )
        return f"session accepted for {self._settings.handle} ({self._did})"

    def history(self, since: datetime) -> Batch:
        """Mentions, replies and quotes notified at or after ``since``, as far back as Bluesky keeps notifications
        and ``max_pages`` reach: the fetch of a cursor that has handled nothing since then."""
        batch = self.fetch(FetchCursor(newest=since + LOOKBACK).encode())
        return Batch(mentions=batch.mentions, cursor=None, gap=batch.gap)

    # -------------------------------------------------------------------------------------------- reading

    def _scan(self, state: FetchCursor | None) -> tuple[list[_Hit], datetime | None, bool]:
        floor = state.newest - LOOKBACK if state is not None and state.newest is not None else None
        newest = state.newest if state is not None else None
        hits: dict[str, _Hit] = {}
        page_cursor: str | None = None
        gap = False
        for page in range(self._max_pages):
            params = models.AppBskyNotificationListNotifications.Params(
                limit=self._page_size, cursor=page_cursor, reasons=WANTED_REASONS
            )
            res = self._call(
                "app.bsky.notification.listNotifications",
                partial(self._client.app.bsky.notification.list_notifications, params),
            )
            reached_floor = False
            for notification in res.notifications:
                at = parse_time(notification.indexed_at)
                newest = at if newest is None or at > newest else newest
                if floor is not None and at < floor:
                    reached_floor = True  # pages are sorted newest first: the rest is older still
                    break
                kind = REASONS.get(notification.reason)
                if kind is None or (state is not None and state.seen(notification.uri)):
                    continue
                known = hits.get(notification.uri)
                # A post that both mentions the brand and replies to it notifies twice: keep the stronger reason.
                if known is None or _rank(kind) < _rank(known.kind):
                    hits[notification.uri] = _Hit(notification.uri, kind, at)
            if reached_floor or state is None or not res.cursor:
                break
            page_cursor = res.cursor
            if page == self._max_pages - 1:
                gap = True
        ordered = sorted(hits.values(), key=lambda hit: (hit.at, hit.uri))
        return ordered, newest, gap

    def _get_posts(self, uris: Sequence[str]) -> dict[str, models.AppBskyFeedDefs.PostView]:
        posts: dict[str, models.AppBskyFeedDefs.PostView] = {}
        for start in range(0, len(uris), GET_POSTS_CHUNK):
            chunk = list(uris[start : start + GET_POSTS_CHUNK])
            res = self._call("app.bsky.feed.getPosts", partial(self._client.get_posts, chunk))
            posts.update((post.uri, post) for post in res.posts)
        return posts

    def _to_mention(self, post: models.AppBskyFeedDefs.PostView, kind: MentionKind) -> Mention | None:
        fields = _post_fields(post.record)
        if fields is None:
            logger.warning("bluesky %s: %s is not a post record; skipped", self.account, post.uri)
            return None
        try:
            created_at = parse_time(fields.created_at)
        except ValueError:
            created_at = parse_time(post.indexed_at)
        author = post.author  # only did and handle are read: everything else there is reach or profile
        handle = author.handle if author.handle and author.handle != "handle.invalid" else author.did
        return Mention(
            platform=PLATFORM,
            account=self.account,
            post_id=post.uri,
            author_id=author.did,
            author_handle=author.handle,
            text=fields.text,
            created_at=created_at,
            url=f"https://bsky.app/profile/{handle}/post/{post.uri.rsplit('/', 1)[-1]}",
            kind=kind,
            addresses_account=kind in REPLYABLE,
            from_account=author.did == self._did,
            reply_to_id=fields.parent,
            conversation_id=fields.root or post.uri,
            lang=fields.langs[0] if fields.langs else None,
        )

    def _decode(self, since: str | None) -> FetchCursor | None:
        if since is None:
            return None
        try:
            return FetchCursor.decode(since)
        except ValueError as exc:
            # Starting over re-reads the newest page; the ledger's unique post ids keep that from double-ticketing.
            logger.warning("bluesky %s: stored cursor unusable (%s); starting from the newest page", self.account, exc)
            return None

    # -------------------------------------------------------------------------------------------- calls and sessions

    def _call(self, method: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run one SDK call with login, session recovery, rate-limit pauses, bounded retries and error translation."""
        paused_until = self._paused.get(method, 0.0)
        if paused_until > time.time():
            raise RateLimited(f"bluesky {self.account}: {method} is rate limited", paused_until - time.time())
        retrying = Retrying(
            stop=stop_after_attempt(READ_ATTEMPTS if idempotent else 1),
            wait=self.retry_wait,
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._with_session(fn)
        except RateLimitExceededError as exc:
            retry_after = _retry_after(exc)
            self._paused[method] = time.time() + retry_after
            raise RateLimited(f"bluesky {self.account}: {method} rate limited (429)", retry_after) from exc
        except AtProtocolError as exc:
            if _is_transient(exc):
                raise TransientError(f"bluesky {self.account}: {method} failed: {exc}") from exc
            if _is_auth_error(exc):
                raise AuthFailed(f"bluesky {self.account}: the session was refused: {exc}") from exc
            raise PermanentError(f"bluesky {self.account}: {method} refused: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _with_session(self, fn: Callable[[], T]) -> T:
        self._ensure_login()
        try:
            return fn()
        except (UnauthorizedError, BadRequestError, LoginRequiredError) as exc:
            if not (isinstance(exc, LoginRequiredError) or _is_auth_error(exc)):
                raise
            logger.info("bluesky %s: session refused (%s); refreshing it", self.account, _xrpc_error(exc) or exc)
            self._recover_session()
        return fn()

    def _ensure_login(self) -> str:
        with self._lock:
            if self._did is not None:
                return self._did
            stored = self._store.get()
            if stored:
                try:
                    session = Session.decode(stored)
                    if session.handle.lower() == self._settings.handle.lower():
                        self._client.login(session_string=stored, fetch_bsky_profile=False)
                        self._did = session.did
                        logger.debug("bluesky %s: reusing the stored session", self.account)
                        return str(session.did)
                    logger.info("bluesky %s: stored session is for another handle; logging in", self.account)
                except (ValueError, AtProtocolError) as exc:
                    logger.info("bluesky %s: stored session unusable (%s); logging in", self.account, exc)
            return self._login()

    def _recover_session(self) -> None:
        with self._lock:
            try:
                # SDK-internal (atproto is pinned): refresh with the refresh token and fire the REFRESH callback.
                self._client._refresh_and_set_session()
                return
            except (UnauthorizedError, BadRequestError, LoginRequiredError) as exc:
                logger.info(
                    "bluesky %s: session refresh refused (%s); logging in again",
                    self.account,
                    _xrpc_error(exc) or type(exc).__name__,
                )
            self._login()

    def _login(self) -> str:
        password = self._settings.app_password
        if password is None:
            raise AuthFailed(f"bluesky {self.account}: no stored session and no app_password configured")
        try:
            self._client.login(self._settings.handle, password.get_secret_value(), fetch_bsky_profile=False)
        except (UnauthorizedError, BadRequestError) as exc:
            raise AuthFailed(f"bluesky {self.account}: login as {self._settings.handle} refused: {exc}") from exc
        assert self._did is not None  # set by the CREATE session callback
        return self._did

    def _on_session_change(self, event: SessionEvent, session: Session) -> None:
        if event is SessionEvent.IMPORT:
            return
        if event is SessionEvent.CREATE:
            logger.info("bluesky %s: created a new session for %s", self.account, session.handle)
        self._did = session.did
        self._store.set(session.export())

    def _new_client(self, transport: httpx.BaseTransport | None) -> Client:
        request = Request(timeout=HTTP_TIMEOUT, transport=transport, event_hooks={"response": [self._note_limits]})
        return Client(base_url=self._settings.service_url, request=request)

    def _note_limits(self, response: httpx.Response) -> None:
        """Pause a method whose ``ratelimit-remaining`` reached 0 until its ``ratelimit-reset``."""
        remaining = response.headers.get("ratelimit-remaining")
        reset = response.headers.get("ratelimit-reset")
        if remaining is None or reset is None:
            return
        try:
            if int(remaining) > 0:
                return
            until = float(reset)
        except ValueError:
            return
        method = response.request.url.path.rsplit("/", 1)[-1]
        self._paused[method] = max(self._paused.get(method, 0.0), until)
        logger.info(
            "bluesky %s: %s budget used up until %s",
            self.account,
            method,
            datetime.fromtimestamp(until, tz=UTC).isoformat(),
        )


def _post_fields(record: Any) -> PostFields | None:
    """The fields a Mention needs from a post record, typed by the SDK or not (see ``raw_post_fields``)."""
    if isinstance(record, models.AppBskyFeedPost.Record):
        reply = record.reply
        return PostFields(
            record.text,
            record.created_at,
            reply.parent.uri if reply else None,
            reply.root.uri if reply else None,
            list(record.langs or []),
        )
    return raw_post_fields(record.to_dict() if hasattr(record, "to_dict") else record)


def link_facets(text: str) -> list[models.AppBskyRichtextFacet.Main]:
    """Rich-text link facets (UTF-8 byte offsets) for every URL in ``text``."""
    return [
        models.AppBskyRichtextFacet.Main(
            features=[models.AppBskyRichtextFacet.Link(uri=url)],
            index=models.AppBskyRichtextFacet.ByteSlice(byte_start=start, byte_end=end),
        )
        for start, end, url in link_spans(text)
    ]


def _rank(kind: MentionKind) -> int:
    return (MentionKind.MENTION, MentionKind.REPLY, MentionKind.QUOTE).index(kind)


def make_bluesky_adapter(name: str, account_settings: BlueskyAccount, settings: Settings) -> BlueskyAdapter:
    """The registry factory: the adapter with its session kept in ``data_dir/bluesky-<name>.session``."""
    store = FileSessionStore(Path(settings.data_dir) / f"bluesky-{name}.session")
    return BlueskyAdapter(name, account_settings, session_store=store)
