"""The X adapter: mentions and keyword search in, one templated reply out, through tweepy (the only tweepy import)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
import tweepy
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential_jitter

from fairdesk.config.settings import ConfigError, Settings, XAccount
from fairdesk.listener.base import (
    AdapterError,
    AuthFailed,
    Batch,
    FoundBy,
    Mention,
    MentionKind,
    PermanentError,
    RateLimited,
    Reply,
    TransientError,
)
from fairdesk.listener.x_cursor import check_search_query, dump_cursor, newest, parse_cursor, search_query
from fairdesk.listener.x_text import MAX_WEIGHTED_LENGTH, check_template, weighted_length
from fairdesk.listener.x_transport import DEFAULT_API_BASE, DEFAULT_TIMEOUT, RetryPolicy, XTransport
from fairdesk.listener.x_wire import PLATFORM, raise_if_user_missing, to_mention

__all__ = ["PLATFORM", "TWEET_FIELDS", "RetryPolicy", "XAdapter", "check_template", "make_x_adapter", "weighted_length"]

logger = logging.getLogger(__name__)

# Only what Mention is built from. Never public_metrics, verified or any other reach field. No user.fields at all:
# X sends id, name and username for every expanded user unasked, and the handle is all a Mention keeps.
TWEET_FIELDS = ("author_id", "conversation_id", "created_at", "lang", "referenced_tweets")
EXPANSIONS = ("author_id",)
PAGE_SIZE = 100
REACHABLE_MENTIONS = 800  # X keeps only the 800 most recent mentions reachable
MAX_MENTION_PAGES = REACHABLE_MENTIONS // PAGE_SIZE + 1
CHECK_PAGE = 5  # the smallest page X serves: `fairdesk doctor` reads one
MAX_SEARCH_PAGES = 10  # a broad keyword query must not read (and bill) thousands of posts per poll
MAX_TIMELINE_PAGES = 32  # the user timeline reaches back 3,200 posts
DEFAULT_RATE_WAIT = 60.0  # a 429 without x-rate-limit-reset
_OTHER_STREAM = {"mentions": "keyword search goes on", "search": "mentions go on"}
_STREAM_NAME = {"mentions": "mentions timeline", "search": "keyword search"}


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


# --- the adapter -------------------------------------------------------------------------------------------------


_RETRYABLE = (tweepy.TwitterServerError, requests.Timeout, requests.ConnectionError)
_GONE_PROBLEMS = ("/resource-not-found", "/not-authorized-for-resource")


class XAdapter:
    """One X account: ``fetch`` reads mentions (and optional keyword search), ``send_reply`` posts one reply.

    Cursor: with no ``search_query`` the cursor is the newest mention id seen (a plain id string, X's ``since_id``);
    with one it is ``{"mentions": <id>, "search": <id>}`` so both streams resume where they stopped. ``fetch(None)``
    (first start) reads only the most recent page of each stream and starts from its newest id.
    """

    platform = PLATFORM
    # X wants deletions honoured within 24 h; every lookup is billed and rate limited, so sweep twice a day.
    deletion_check_seconds = 12 * 3600
    deletion_batch = 100

    def __init__(
        self,
        name: str,
        settings: XAccount,
        *,
        client: tweepy.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = name
        self._settings = settings
        self._handle = settings.handle.lstrip("@")
        self._user_id = settings.user_id
        oauth1 = [settings.consumer_key, settings.consumer_secret, settings.access_token, settings.access_token_secret]
        if any(oauth1) and not all(oauth1):
            raise ConfigError(
                f"x.{name}: set all four of consumer_key, consumer_secret, access_token, access_token_secret "
                "(OAuth 1.0a user context, used for replies) or none of them"
            )
        self._can_post = all(oauth1)
        if settings.bearer_token is None and not self._can_post:
            raise ConfigError(f"x.{name}: set bearer_token (to read mentions) and the OAuth 1.0a keys (to reply)")
        if self._user_id is None and not self._can_post:
            raise ConfigError(f"x.{name}: set user_id, or the OAuth 1.0a keys so it can be looked up with /2/users/me")
        self._read_as_user = settings.bearer_token is None
        query = (settings.search_query or "").strip()
        if query and (problem := check_search_query(query, self._handle)):
            raise ConfigError(f"config key `x.{name}.search_query`: {problem}")
        self._search_query = search_query(query, self._handle) if query else None
        if client is None:
            client = tweepy.Client(
                bearer_token=_secret(settings.bearer_token),
                consumer_key=_secret(settings.consumer_key),
                consumer_secret=_secret(settings.consumer_secret),
                access_token=_secret(settings.access_token),
                access_token_secret=_secret(settings.access_token_secret),
                return_type=requests.Response,
            )
        # We read headers (rate limits) and parse bodies ourselves, and never let tweepy sleep on a 429.
        client.return_type = requests.Response
        client.wait_on_rate_limit = False
        client.session.mount(DEFAULT_API_BASE + "/", XTransport(settings.api_base_url, timeout))
        self._client = client
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._reset_at: dict[str, float] = {}  # endpoint -> when X said its window reopens
        self._skipped: dict[str, str | None] = {}  # stream -> why it was skipped last poll (logged on change)
        if not self._can_post:
            logger.warning("x/%s has no OAuth 1.0a keys: it listens but cannot reply", name)

    # -- Adapter protocol --

    def fetch(self, since: str | None) -> Batch:
        """New mentions (and keyword hits) after cursor ``since``, oldest-first, with the cursor to store next.

        Each endpoint's rate limit is its own: a shut mentions window skips the mentions (their cursor stays) while
        keyword search goes on, and the other way round. ``RateLimited`` (with the soonest reset) only when no stream
        could be read.
        """
        mentions_since, search_since, unreadable = parse_cursor(since)
        if unreadable:
            logger.error(
                "x/%s: unreadable cursor %r; starting from the newest posts (reported as a gap)", self.account, since
            )
        user_id = self.brand_user_id()
        with_search = self._search_query is not None
        try:
            found, mentions_cursor, gap = self._read_mentions(user_id, mentions_since)
        except RateLimited as exc:
            if not with_search:
                raise
            self._note_skip("mentions", exc)
            mentions_limit: RateLimited | None = exc
            found, mentions_cursor, gap = [], mentions_since, False
        else:
            self._note_skip("mentions", None)
            mentions_limit = None
        search_cursor = search_since
        if with_search:
            try:
                hits, search_cursor, search_gap = self._read_search(search_since)
            except AdapterError as exc:
                # Keyword listening is optional: its failure keeps its cursor and never holds up the mentions.
                self._note_skip("search", exc)
                if mentions_limit is not None:  # nothing could be read: wait for the first window to reopen
                    limits = [mentions_limit, *([exc] if isinstance(exc, RateLimited) else [])]
                    raise min(limits, key=lambda limit: limit.retry_after) from None
                hits, search_gap = [], False
            else:
                self._note_skip("search", None)
            seen = {m.post_id for m in found}
            found += [hit for hit in hits if hit.post_id not in seen]  # a post in both streams stays a mention
            gap = gap or search_gap
        found.sort(key=lambda m: int(m.post_id))  # X ids are time-ordered snowflakes
        gap = gap or unreadable
        if gap:
            logger.warning("x/%s: gap: some new posts were beyond X's reach and were missed", self.account)
        logger.debug("x/%s: fetched %d posts", self.account, len(found))
        return Batch(mentions=tuple(found), cursor=dump_cursor(mentions_cursor, search_cursor, with_search), gap=gap)

    def send_reply(self, reply: Reply) -> str:
        """Post ``reply.text`` in reply to the mention; return the new post's id."""
        mention = reply.in_reply_to
        if mention.platform != PLATFORM or reply.account != self.account or mention.account != self.account:
            raise PermanentError(f"reply for {mention.platform}/{reply.account} sent to x/{self.account}")
        if mention.found_by is FoundBy.SEARCH or not mention.addresses_account or mention.kind is MentionKind.REPOST:
            raise PermanentError(
                f"x/{self.account} may not reply to post {mention.post_id}: X allows replies only to posts that "
                "mention the account (no replies to keyword hits or reposts)"
            )
        length = weighted_length(reply.text)
        if length > MAX_WEIGHTED_LENGTH:
            raise PermanentError(f"reply is {length} weighted characters; X allows {MAX_WEIGHTED_LENGTH}")
        if not self._can_post:
            raise PermanentError(f"x/{self.account} has no OAuth 1.0a keys configured, so it cannot reply")
        try:
            body = self._call(
                "create",
                self._client.create_tweet,
                text=reply.text,
                in_reply_to_tweet_id=mention.post_id,
                user_auth=True,
                idempotent=False,
                forbidden=PermanentError,
            )
        except PermanentError as exc:
            if "duplicate content" not in str(exc).lower():
                raise
            # X refuses the same text twice: our earlier attempt went through although we never heard back.
            existing = self._settle(mention)
            if existing is None:
                raise
            return existing
        except TransientError:
            # A timeout or 5xx leaves the outcome unknown: X may have posted it. Look before anyone sends again.
            existing = self._settle(mention)
            if existing is None:
                raise
            return existing
        try:
            new_id = body["data"]["id"]
        except (KeyError, TypeError) as exc:
            raise TransientError("X accepted the reply but its response has no post id") from exc
        return str(new_id)

    def _settle(self, mention: Mention) -> str | None:
        try:
            existing = self.find_reply(mention)
        except AdapterError as exc:
            logger.warning("x/%s: could not check for an earlier reply to %s: %s", self.account, mention.post_id, exc)
            return None
        if existing is not None:
            logger.info("x/%s: reply to %s was already posted as %s", self.account, mention.post_id, existing)
        return existing

    def find_reply(self, mention: Mention) -> str | None:
        """The id of the account's reply to ``mention``, if it already posted one (read from its own timeline)."""
        user_id = self.brand_user_id()
        params: dict[str, Any] = {
            "since_id": mention.post_id,  # a reply is always newer than the post it answers
            "max_results": PAGE_SIZE,
            "tweet_fields": ["referenced_tweets"],
            "exclude": ["retweets"],
            "user_auth": self._read_as_user,
        }
        token = None
        for _ in range(MAX_TIMELINE_PAGES):
            body = self._call("timeline", self._client.get_users_tweets, user_id, pagination_token=token, **params)
            raise_if_user_missing(body, user_id, self.account)
            for tweet in body.get("data") or ():
                for ref in tweet.get("referenced_tweets") or ():
                    if ref.get("type") == "replied_to" and ref.get("id") == mention.post_id:
                        return str(tweet["id"])
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                return None
        logger.warning(
            "x/%s: stopped looking for a reply to %s after %d pages", self.account, mention.post_id, MAX_TIMELINE_PAGES
        )
        return None

    def deleted_posts(self, post_ids: Sequence[str]) -> set[str]:
        """Which of ``post_ids`` X no longer shows: deleted, or hidden (protected or suspended author).

        X's developer policy asks for both to be removed from stored data. Posts X says nothing about are kept.
        One ``GET /2/tweets`` per 100 ids (the deletion sweep).
        """
        ids = [post_id for post_id in dict.fromkeys(post_ids) if post_id.isdigit()]
        gone: set[str] = set()
        for start in range(0, len(ids), PAGE_SIZE):
            chunk = set(ids[start : start + PAGE_SIZE])
            body = self._call("lookup", self._client.get_tweets, sorted(chunk), user_auth=self._read_as_user)
            for error in body.get("errors") or ():
                if not isinstance(error, dict):
                    continue
                post_id = str(error.get("resource_id") or error.get("value") or "")
                if post_id in chunk and str(error.get("type", "")).endswith(_GONE_PROBLEMS):
                    gone.add(post_id)
        return gone

    def close(self) -> None:
        self._client.session.close()

    def check(self) -> str:
        """Read-only proof that X accepts the keys: GET /2/users/me with the OAuth 1.0a keys (the user the replies
        come from), and one small mentions read with the bearer token when one is set."""
        said = []
        if self._can_post:
            body = self._call("me", self._client.get_me, user_auth=True)
            username = str((body.get("data") or {}).get("username", ""))
            if username.lower() != self._handle.lower():
                raise PermanentError(f"the OAuth keys belong to @{username}, not the configured handle @{self._handle}")
            said.append(f"OAuth 1.0a keys are @{username}'s")
        if self._settings.bearer_token is not None:
            params = {**self._read_params(), "max_results": CHECK_PAGE}
            self._call("mentions", self._client.get_users_mentions, self.brand_user_id(), **params)
            said.append("bearer token reads mentions")
        return "; ".join(said)

    def history(self, since: datetime) -> Batch:
        """Mentions created at or after ``since`` that X still serves (its newest 800), oldest first."""
        params = {**self._read_params(), "start_time": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        user_id = self.brand_user_id()

        def page(token: str | None) -> dict[str, Any]:
            return self._call("mentions", self._client.get_users_mentions, user_id, pagination_token=token, **params)

        pages, truncated = self._pages(page, follow=True, max_pages=MAX_MENTION_PAGES)
        raise_if_user_missing(pages[0], user_id, self.account)
        found = sorted(self._mentions(pages, FoundBy.MENTION), key=lambda m: int(m.post_id))
        return Batch(mentions=tuple(found), cursor=None, gap=truncated)

    # -- reading --

    def brand_user_id(self) -> str:
        """The account's numeric X id: from settings, else looked up once with GET /2/users/me."""
        if self._user_id is None:
            body = self._call("me", self._client.get_me, user_auth=True)
            try:
                data = body["data"]
                self._user_id = str(data["id"])
                username = data.get("username", "")
            except (KeyError, TypeError) as exc:
                raise TransientError("X /2/users/me answered without a user id") from exc
            if username.lower() != self._handle.lower():
                logger.warning(
                    "x/%s: the OAuth keys belong to @%s, not the configured handle @%s",
                    self.account,
                    username,
                    self._handle,
                )
            logger.info("x/%s: @%s is user %s", self.account, username, self._user_id)
        return self._user_id

    def _read_params(self) -> dict[str, Any]:
        return {
            "max_results": PAGE_SIZE,
            "tweet_fields": list(TWEET_FIELDS),
            "expansions": list(EXPANSIONS),
            "user_auth": self._read_as_user,
        }

    def _read_mentions(self, user_id: str, since: str | None) -> tuple[list[Mention], str | None, bool]:
        params = self._read_params()
        if since is not None:
            params["since_id"] = since

        def page(token: str | None) -> dict[str, Any]:
            return self._call("mentions", self._client.get_users_mentions, user_id, pagination_token=token, **params)

        pages, truncated = self._pages(page, follow=since is not None, max_pages=MAX_MENTION_PAGES)
        raise_if_user_missing(pages[0], user_id, self.account)
        mentions = self._mentions(pages, FoundBy.MENTION)
        gap = truncated or (since is not None and len(mentions) >= REACHABLE_MENTIONS)
        return mentions, newest((m.post_id for m in mentions), since), gap

    def _read_search(self, since: str | None) -> tuple[list[Mention], str | None, bool]:
        params = self._read_params()
        query = self._search_query
        restarted = False
        if since is not None:
            params["since_id"] = since

        def page(token: str | None) -> dict[str, Any]:
            return self._call("search", self._client.search_recent_tweets, query, next_token=token, **params)

        try:
            pages, truncated = self._pages(page, follow=since is not None, max_pages=MAX_SEARCH_PAGES)
        except PermanentError as exc:
            if since is None or "since_id" not in str(exc):
                raise
            # Recent search reaches back 7 days; an older since_id is refused, so start again from now.
            logger.warning("x/%s: search cursor is older than X's 7-day window; restarting search", self.account)
            params.pop("since_id")
            since, restarted = None, True
            pages, truncated = self._pages(page, follow=False, max_pages=1)
        hits = self._mentions(pages, FoundBy.SEARCH)
        return hits, newest((m.post_id for m in hits), since), truncated or restarted

    def _note_skip(self, stream: str, exc: AdapterError | None) -> None:
        # Log changes of state only: the first failure (and each different one), then the recovery. A rate limit is
        # one state however X words it (the 429, then our own refusal until the reset).
        if exc is None:
            state = None
        elif isinstance(exc, RateLimited):
            state = "rate limited"
        else:
            state = f"{type(exc).__name__}: {exc}"
        if state == self._skipped.get(stream):
            return
        name, other = _STREAM_NAME[stream], _OTHER_STREAM[stream]
        if exc is None:
            logger.info("x/%s: %s recovered", self.account, name)
        elif isinstance(exc, (RateLimited, TransientError)):
            kind = type(exc).__name__
            logger.warning("x/%s: %s skipped this poll (%s: %s); %s", self.account, name, kind, exc, other)
        else:
            logger.error("x/%s: %s fails (%s); fix search_query or the plan; %s", self.account, name, state, other)
        self._skipped[stream] = state

    def _pages(
        self, page: Callable[[str | None], dict[str, Any]], *, follow: bool, max_pages: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Pages newest-first; ``True`` if there were more than ``max_pages``."""
        pages: list[dict[str, Any]] = []
        token = None
        for _ in range(max_pages):
            body = page(token)
            pages.append(body)
            token = (body.get("meta") or {}).get("next_token")
            if not follow or not token:
                return pages, False
        return pages, True

    def _mentions(self, pages: list[dict[str, Any]], found_by: FoundBy) -> list[Mention]:
        out: list[Mention] = []
        try:
            for body in pages:
                handles = {u["id"]: u["username"] for u in (body.get("includes") or {}).get("users") or ()}
                for tweet in body.get("data") or ():
                    out.append(self._mention(tweet, handles, found_by))
                if body.get("errors"):
                    logger.debug("x/%s: %d partial errors in a page", self.account, len(body["errors"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TransientError(f"X answered with an unexpected body shape: {exc!r}") from exc
        return out

    def _mention(self, tweet: Mapping[str, Any], handles: Mapping[str, str], found_by: FoundBy) -> Mention:
        return to_mention(tweet, handles, found_by, account=self.account, brand_user_id=self._user_id)

    # -- one API call: rate-limit gate, bounded retry, error translation --

    def _call(
        self,
        endpoint: str,
        method: Callable[..., Any],
        *args: Any,
        idempotent: bool = True,
        forbidden: type[AdapterError] = AuthFailed,
        **kwargs: Any,
    ) -> dict[str, Any]:
        policy = self._retry
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts if idempotent else 1) | stop_after_delay(policy.deadline),
            wait=wait_exponential_jitter(multiplier=policy.initial, max=policy.maximum, jitter=policy.initial),
            retry=retry_if_exception_type(_RETRYABLE),
            reraise=True,
        )
        what = f"X {endpoint} for x/{self.account}"
        try:
            for attempt in retrying:
                with attempt:
                    response = self._send(endpoint, method, *args, **kwargs)
        except AdapterError:
            raise
        except tweepy.TooManyRequests as exc:
            retry_after = self._reset_at.get(endpoint, 0.0) - self._clock()  # _send noted the reset
            raise RateLimited(f"{what}: rate limited (429): {_reason(exc)}", max(retry_after, 0.0)) from exc
        except tweepy.Unauthorized as exc:
            raise AuthFailed(f"{what}: credentials refused (401): {_reason(exc)}") from exc
        except tweepy.Forbidden as exc:
            raise forbidden(f"{what}: refused (403): {_reason(exc)}") from exc
        except (tweepy.BadRequest, tweepy.NotFound) as exc:
            raise PermanentError(f"{what}: refused ({exc.response.status_code}): {_reason(exc)}") from exc
        except tweepy.TwitterServerError as exc:
            raise TransientError(f"{what}: server error {exc.response.status_code}") from exc
        except tweepy.HTTPException as exc:
            raise TransientError(f"{what}: unexpected status {exc.response.status_code}") from exc
        except requests.Timeout as exc:
            raise TransientError(f"{what}: timed out") from exc
        except requests.RequestException as exc:
            raise TransientError(f"{what}: network error: {type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(f"{what}: malformed JSON body (status {response.status_code})") from exc
        if not isinstance(body, dict):
            raise TransientError(f"{what}: body is not a JSON object")
        return body

    def _send(self, endpoint: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> requests.Response:
        reset = self._reset_at.get(endpoint)
        if reset is not None:
            wait = reset - self._clock()
            if wait > 0:
                raise RateLimited(f"X {endpoint} for x/{self.account}: no requests left until the window resets", wait)
            del self._reset_at[endpoint]
        try:
            response = method(*args, **kwargs)
        except tweepy.HTTPException as exc:
            self._note_limits(endpoint, exc.response)
            raise
        self._note_limits(endpoint, response)
        return response

    def _note_limits(self, endpoint: str, response: requests.Response) -> None:
        headers = response.headers
        try:
            remaining = int(headers["x-rate-limit-remaining"]) if "x-rate-limit-remaining" in headers else None
            reset = float(headers["x-rate-limit-reset"]) if "x-rate-limit-reset" in headers else None
        except ValueError:
            return
        if response.status_code == 429 or remaining == 0:
            self._reset_at[endpoint] = reset if reset is not None else self._clock() + DEFAULT_RATE_WAIT


def _reason(exc: tweepy.HTTPException) -> str:
    """X's own words for a refusal (problem ``detail``/``title`` or legacy messages), without the request."""
    messages = [m for m in exc.api_messages if m]
    if not messages:
        try:
            body = exc.response.json()
            messages = [body.get("title", "")] if isinstance(body, dict) else []
        except ValueError:
            messages = []
    return "; ".join(messages) or exc.response.reason or "no reason given"


def make_x_adapter(name: str, account_settings: XAccount, settings: Settings) -> XAdapter:
    """Registry factory: ``ADAPTERS["x"](name, account_settings, settings)``."""
    return XAdapter(name, account_settings)
