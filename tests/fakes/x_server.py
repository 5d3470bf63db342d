"""A fake X API v2 server (mentions, search, timeline, post lookup, create post, users/me) for tests and local runs."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from tests.fakes.serving import FakeHandler, ServedFake

logger = logging.getLogger(__name__)

TWITTER_EPOCH_MS = 1288834974657  # snowflake ids: (ms since this) << 22 | sequence
REACHABLE_MENTIONS = 800
TIMELINE_REACH = 3200
SEARCH_WINDOW = timedelta(days=7)
MAX_QUERY_LENGTH = 512
OAUTH_CLOCK_SKEW = 300  # seconds
PROBLEM_BASE = "https://api.twitter.com/2/problems/"
JSON = "application/json; charset=utf-8"
PROBLEM_JSON = "application/problem+json"

# The field and expansion names the spec allows (openapi-2.159 enums); anything else is a 400, as on X.
TWEET_FIELDS = frozenset(
    "article attachments author_id card_uri community_id context_annotations conversation_id created_at "
    "display_text_range edit_controls edit_history_tweet_ids entities geo id in_reply_to_user_id lang media_metadata "
    "non_public_metrics note_tweet organic_metrics possibly_sensitive promoted_metrics public_metrics "
    "referenced_tweets reply_settings scopes source suggested_source_links suggested_source_links_with_counts text "
    "withheld".split()
)
USER_FIELDS = frozenset(
    "affiliation confirmed_email connection_status created_at description entities id is_identity_verified location "
    "most_recent_tweet_id name parody pinned_tweet_id profile_banner_url profile_image_url protected public_metrics "
    "receives_your_dm subscription subscription_type url username verified verified_followers_count verified_type "
    "withheld".split()
)
TWEET_EXPANSIONS = frozenset(
    "article.cover_media article.media_entities attachments.media_keys attachments.media_source_tweet "
    "attachments.poll_ids author_id edit_history_tweet_ids entities.mentions.username geo.place_id "
    "in_reply_to_user_id entities.note.mentions.username referenced_tweets.id "
    "referenced_tweets.id.attachments.media_keys referenced_tweets.id.author_id".split()
)
USER_EXPANSIONS = frozenset({"affiliation.user_id", "most_recent_tweet_id", "pinned_tweet_id"})
_FIELD_PARAMS = ("tweet.fields", "user.fields", "expansions", "media.fields", "poll.fields", "place.fields")
_TIMELINE_PARAMS = frozenset(
    {"since_id", "until_id", "max_results", "pagination_token", "start_time", "end_time", *_FIELD_PARAMS}
)
_SEARCH_PARAMS = frozenset(
    {
        "query",
        "start_time",
        "end_time",
        "since_id",
        "until_id",
        "max_results",
        "next_token",
        "pagination_token",
        "sort_order",
        *_FIELD_PARAMS,
    }
)
_CREATE_KEYS = frozenset(
    {
        "card_uri",
        "community_id",
        "direct_message_deep_link",
        "edit_options",
        "for_super_followers_only",
        "geo",
        "media",
        "nullcast",
        "poll",
        "quote_tweet_id",
        "reply",
        "reply_settings",
        "share_with_followers",
        "text",
    }
)
_REPLY_KEYS = frozenset({"auto_populate_reply_metadata", "exclude_reply_user_ids", "in_reply_to_tweet_id"})
DEFAULT_LIMITS = {  # (requests, window seconds), from X's rate-limit page
    "mentions": (450, 900),
    "search": (450, 900),
    "timeline": (1500, 900),
    "create": (100, 900),
    "me": (75, 900),
    "lookup": (450, 900),
}


def _mentions_handle(text: str, username: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_@])@{re.escape(username)}(?![A-Za-z0-9_])", text, re.IGNORECASE) is not None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def snowflake_time(tweet_id: str | int) -> datetime:
    """When an X id was made (ids are time-ordered snowflakes)."""
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)


def _rough_weight(text: str) -> int:
    # A coarse, independent count (code points; URLs 23; non-Latin 2): enough to refuse clearly over-long posts.
    text = re.sub(r"https?://\S+", "x" * 23, text)
    return sum(1 if ord(c) <= 0x10FF or 0x2000 <= ord(c) <= 0x201F else 2 for c in text)


@dataclass
class FakeUser:
    """An X account. It carries reach (followers, verified) so a test can show the adapter never asks for it."""

    id: str
    username: str
    name: str
    followers_count: int = 0
    following_count: int = 0
    tweet_count: int = 0
    listed_count: int = 0
    verified: bool = False
    verified_type: str = "none"
    description: str = ""
    location: str | None = None
    protected: bool = False
    created_at: datetime = field(default_factory=lambda: datetime(2015, 3, 1, tzinfo=UTC))

    def wire(self, fields: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "username": self.username}
        extra: dict[str, Any] = {
            "created_at": _iso(self.created_at),
            "description": self.description,
            "location": self.location,
            "protected": self.protected,
            "public_metrics": {
                "followers_count": self.followers_count,
                "following_count": self.following_count,
                "tweet_count": self.tweet_count,
                "listed_count": self.listed_count,
            },
            "verified": self.verified,
            "verified_type": self.verified_type,
            "profile_image_url": f"https://pbs.twimg.com/profile_images/{self.id}/photo_normal.jpg",
        }
        out.update({k: v for k, v in extra.items() if k in fields and v is not None})
        return out


@dataclass
class FakeTweet:
    id: str
    author_id: str
    text: str
    created_at: datetime
    conversation_id: str
    lang: str = "en"
    referenced: tuple[tuple[str, str], ...] = ()  # (type, id)
    in_reply_to_user_id: str | None = None
    like_count: int = 0
    retweet_count: int = 0
    deleted: bool = False

    def ref(self, kind: str) -> str | None:
        return next((tid for t, tid in self.referenced if t == kind), None)

    def wire(self, fields: set[str], users_by_name: dict[str, FakeUser]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text, "edit_history_tweet_ids": [self.id]}
        mentions = [
            {
                "start": m.start(),
                "end": m.end(),
                "username": m.group(1),
                **({"id": users_by_name[m.group(1).lower()].id} if m.group(1).lower() in users_by_name else {}),
            }
            for m in re.finditer(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})", self.text)
        ]
        extra: dict[str, Any] = {
            "author_id": self.author_id,
            "conversation_id": self.conversation_id,
            "created_at": _iso(self.created_at),
            "lang": self.lang,
            "in_reply_to_user_id": self.in_reply_to_user_id,
            "referenced_tweets": [{"type": t, "id": tid} for t, tid in self.referenced] or None,
            "public_metrics": {
                "retweet_count": self.retweet_count,
                "reply_count": 0,
                "like_count": self.like_count,
                "quote_count": 0,
                "bookmark_count": 0,
                "impression_count": 10 * self.like_count,
            },
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "entities": {"mentions": mentions} if mentions else None,
        }
        out.update({k: v for k, v in extra.items() if k in fields and v is not None})
        return out


@dataclass(frozen=True)
class FakeCredentials:
    """What the fake accepts. The access token starts with the brand's user id, as X's do (tweepy relies on it)."""

    bearer_token: str
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str

    @classmethod
    def for_user(cls, user_id: str) -> FakeCredentials:
        return cls(
            bearer_token="AAAAfake-bearer-token-for-tests",
            consumer_key="fake-consumer-key",
            consumer_secret="fake-consumer-secret",
            access_token=f"{user_id}-fake-access-token",
            access_token_secret="fake-access-token-secret",
        )

    @property
    def user_id(self) -> str:
        return self.access_token.partition("-")[0]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, used by the next matching request."""

    kind: str  # "error" | "rate_limited" | "slow" | "malformed" | "disconnect"
    status: int = 503
    delay: float = 0.0
    process: bool = True  # "slow": still carry out the request (a post may be created although the client gave up)
    legacy: bool = False  # "rate_limited": the legacy {"errors":[{"code":88,...}]} body

    @classmethod
    def error(cls, status: int = 503) -> Fault:
        return cls("error", status=status)

    @classmethod
    def rate_limited(cls, reset_in: float = 2.0, *, legacy: bool = False) -> Fault:
        return cls("rate_limited", status=429, delay=reset_in, legacy=legacy)

    @classmethod
    def slow(cls, delay: float, *, process: bool = True) -> Fault:
        return cls("slow", delay=delay, process=process)

    @classmethod
    def malformed(cls) -> Fault:
        return cls("malformed", status=200)

    @classmethod
    def disconnect(cls) -> Fault:
        return cls("disconnect", status=0)


@dataclass
class RecordedRequest:
    """What the server was sent; ``status`` is filled in when it answers (0: connection dropped)."""

    method: str
    path: str
    endpoint: str | None
    query: dict[str, str]
    host: str
    auth: str | None  # "bearer" | "oauth1" | None
    body: Any
    status: int | None = None
    response: Any = None  # the JSON answered (a string if it was not JSON)
    content_type: str | None = None

    def fields(self, name: str) -> set[str]:
        """The comma-separated values of a query parameter, e.g. ``fields("user.fields")``."""
        value = self.query.get(name, "")
        return {part for part in value.split(",") if part}


@dataclass
class _Window:
    limit: int
    seconds: float
    used: int = 0
    reset_at: float = 0.0


class _ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], content_type: str = PROBLEM_JSON) -> None:
        super().__init__(status)
        self.status, self.body, self.content_type = status, body, content_type


def _problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any) -> _ApiError:
    body = {"title": title, "detail": detail, "type": kind if kind == "about:blank" else PROBLEM_BASE + kind}
    body.update(status=status, **extra)
    return _ApiError(status, body)


def _invalid(parameter: str, value: str, message: str) -> _ApiError:
    return _ApiError(
        400,
        {
            "errors": [{"parameters": {parameter: [value]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEM_BASE + "invalid-request",
        },
    )


# --- the search query language (a useful subset of X's operators) -----------------------------------------------

_QUERY_TOKEN = re.compile(r'\s*(-?\(|\)|-?"[^"]*"|-?[^\s()"]+)')
Matcher = Callable[[FakeTweet], bool]


class _QueryParser:
    def __init__(self, query: str, server: FakeXServer) -> None:
        self.tokens = [t for t in _QUERY_TOKEN.findall(query) if t.strip()]
        self.pos = 0
        self.server = server
        self.query = query

    def parse(self) -> Matcher:
        matcher = self._or()
        if self.pos != len(self.tokens):
            raise self._error(f"unexpected '{self.tokens[self.pos]}'")
        return matcher

    def _error(self, message: str) -> _ApiError:
        return _invalid("query", self.query, f"There were errors processing your request: {message}")

    def _or(self) -> Matcher:
        parts = [self._and()]
        while self.pos < len(self.tokens) and self.tokens[self.pos] == "OR":
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda t: any(p(t) for p in parts))

    def _and(self) -> Matcher:
        parts: list[Matcher] = []
        while self.pos < len(self.tokens) and self.tokens[self.pos] not in (")", "OR"):
            parts.append(self._unary())
        if not parts:
            raise self._error("empty clause")
        return lambda t: all(p(t) for p in parts)

    def _unary(self) -> Matcher:
        token = self.tokens[self.pos]
        self.pos += 1
        negate = token.startswith("-") and len(token) > 1
        token = token[1:] if negate else token
        if token == "(":
            inner = self._or()
            if self.pos >= len(self.tokens) or self.tokens[self.pos] != ")":
                raise self._error("unbalanced parentheses")
            self.pos += 1
            matcher = inner
        else:
            matcher = self._term(token)
        return (lambda t: not matcher(t)) if negate else matcher

    def _term(self, token: str) -> Matcher:
        server = self.server
        if token.startswith('"'):
            phrase = token.strip('"').lower()
            return lambda t: phrase in t.text.lower()
        if token.startswith("@"):
            name = token[1:]
            return lambda t: _mentions_handle(t.text, name)
        if token.startswith("#"):
            tag = re.compile(rf"(?<!\w){re.escape(token)}(?!\w)", re.IGNORECASE)
            return lambda t: tag.search(t.text) is not None
        op, sep, value = token.partition(":")
        if sep and op in ("from", "to"):
            user = server.user(value)
            uid = user.id if user else None
            if op == "from":
                return lambda t: t.author_id == uid
            return lambda t: t.in_reply_to_user_id == uid
        if sep and op in ("conversation_id", "in_reply_to_tweet_id"):
            if op == "conversation_id":
                return lambda t: t.conversation_id == value
            return lambda t: t.ref("replied_to") == value
        if sep and op == "is":
            kinds = {"retweet": "retweeted", "reply": "replied_to", "quote": "quoted"}
            if value not in kinds:
                raise self._error(f"Reference to invalid operator 'is:{value}'")
            return lambda t: t.ref(kinds[value]) is not None
        if sep and op == "lang":
            return lambda t: t.lang == value
        if sep:
            raise self._error(f"Reference to invalid field '{op}'")
        word = re.compile(rf"(?<!\w){re.escape(token)}(?!\w)", re.IGNORECASE)
        return lambda t: word.search(t.text) is not None


# --- the server ------------------------------------------------------------------------------------------------


_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"/2/users/me"), "me"),
    ("GET", re.compile(r"/2/users/(?P<id>[^/]+)/mentions"), "mentions"),
    ("GET", re.compile(r"/2/users/(?P<id>[^/]+)/tweets"), "timeline"),
    ("GET", re.compile(r"/2/tweets/search/recent"), "search"),
    ("POST", re.compile(r"/2/tweets"), "create"),
    ("GET", re.compile(r"/2/tweets"), "lookup"),
)


class FakeXServer(ServedFake):
    """A contract-faithful stand-in for X API v2 on 127.0.0.1, in a thread (tests) or in the foreground (CLI).

    Example::

        with FakeXServer() as x:
            x.post("dana", "@acme_support my order never arrived")
            settings = XAccount(handle="acme_support", api_base_url=x.url, **x.account_secrets())
            ...
            assert x.requests("mentions")[0].fields("expansions") == {"author_id"}
    """

    thread_name = "fake-x"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        brand: str = "acme_support",
        brand_id: str = "1500000000000000001",
    ) -> None:
        self._lock = threading.RLock()
        self._users: dict[str, FakeUser] = {}
        self._tweets: dict[str, FakeTweet] = {}
        self._log: list[RecordedRequest] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._windows = {name: _Window(limit, seconds) for name, (limit, seconds) in DEFAULT_LIMITS.items()}
        self._nonces: set[tuple[str, str]] = set()
        self._last_id = 0
        self.brand = self.add_user(brand, user_id=brand_id, name="Acme Support", followers_count=250_000, verified=True)
        self.credentials = FakeCredentials.for_user(brand_id)
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._httpd.fake = self  # type: ignore[attr-defined]

    # -- lifecycle --

    def account_secrets(self) -> dict[str, str]:
        """The brand's credentials as XAccount keyword arguments."""
        c = self.credentials
        return {
            "bearer_token": c.bearer_token,
            "consumer_key": c.consumer_key,
            "consumer_secret": c.consumer_secret,
            "access_token": c.access_token,
            "access_token_secret": c.access_token_secret,
        }

    # -- data --

    def _new_id(self, at: datetime) -> str:
        candidate = (int(at.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22
        with self._lock:
            if candidate <= self._last_id and (candidate >> 22) == (self._last_id >> 22):
                candidate = self._last_id + 1
            while str(candidate) in self._tweets or str(candidate) in self._users:
                candidate += 1
            self._last_id = max(self._last_id, candidate)
            return str(candidate)

    def add_user(self, username: str, *, user_id: str | None = None, name: str | None = None, **reach: Any) -> FakeUser:
        with self._lock:
            uid = user_id or str(2_000_000 + len(self._users))
            user = FakeUser(id=uid, username=username, name=name or username.replace("_", " ").title(), **reach)
            self._users[uid] = user
            return user

    def user(self, ref: str) -> FakeUser | None:
        """A user by id or username (case-insensitive)."""
        with self._lock:
            if ref in self._users:
                return self._users[ref]
            return next((u for u in self._users.values() if u.username.lower() == ref.lower().lstrip("@")), None)

    def _author(self, ref: str) -> FakeUser:
        user = self.user(ref)
        if user is None:  # unknown authors appear on first post, with some reach the adapter must never see
            user = self.add_user(ref.lstrip("@"), followers_count=1000 + 37 * len(self._users), verified=False)
        return user

    def post(
        self,
        author: str,
        text: str = "",
        *,
        reply_to: str | None = None,
        quote: str | None = None,
        retweet: str | None = None,
        created_at: datetime | None = None,
        lang: str = "en",
    ) -> str:
        """Create a post as ``author`` (username or id); return its id. Unknown authors are created."""
        with self._lock:
            user = self._author(author)
            at = created_at or datetime.now(UTC)
            tid = self._new_id(at)
            refs: list[tuple[str, str]] = []
            conversation, in_reply_to_user = tid, None
            if retweet is not None:
                original = self._tweets[retweet]
                text = f"RT @{self._users[original.author_id].username}: {original.text}"
                refs.append(("retweeted", retweet))
                original.retweet_count += 1
            if quote is not None:
                refs.append(("quoted", quote))
            if reply_to is not None:
                parent = self._tweets[reply_to]
                refs.append(("replied_to", reply_to))
                conversation, in_reply_to_user = parent.conversation_id, parent.author_id
            self._tweets[tid] = FakeTweet(tid, user.id, text, at, conversation, lang, tuple(refs), in_reply_to_user)
            user.tweet_count += 1
            return tid

    def delete(self, tweet_id: str) -> None:
        with self._lock:
            self._tweets[tweet_id].deleted = True

    def tweet(self, tweet_id: str) -> FakeTweet:
        with self._lock:
            return self._tweets[tweet_id]

    def posts_by(self, author: str) -> list[FakeTweet]:
        """The visible posts of ``author``, oldest first (e.g. the replies the daemon made as the brand)."""
        user = self.user(author)
        with self._lock:
            return sorted(
                (t for t in self._tweets.values() if user and t.author_id == user.id and not t.deleted),
                key=lambda t: int(t.id),
            )

    # -- faults, limits, log --

    def inject(self, endpoint: str, *faults: Fault) -> None:
        """Queue faults for the next requests to an endpoint: mentions, search, timeline, lookup, create, me or "*"."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(faults)

    def set_rate_limit(self, endpoint: str, limit: int, window_seconds: float) -> None:
        with self._lock:
            self._windows[endpoint] = _Window(limit, window_seconds)

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._log if endpoint is None or r.endpoint == endpoint]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- request handling (called from handler threads) --

    def _authenticate(self, method: str, host: str, target: str, headers: dict[str, str]) -> str:
        header = headers.get("authorization", "")
        if header.startswith("Bearer "):
            if hmac.compare_digest(header[7:].encode(), self.credentials.bearer_token.encode()):
                return "bearer"
            raise _problem(401, "Unauthorized", "Unauthorized")
        if header.startswith("OAuth "):
            self._verify_oauth1(method, host, target, header)
            return "oauth1"
        raise _problem(401, "Unauthorized", "Unauthorized")

    def _verify_oauth1(self, method: str, host: str, target: str, header: str) -> None:
        c = self.credentials
        try:
            oauth = {k: oauth_utils.unescape(v) for k, v in oauth_utils.parse_authorization_header(header)}
        except ValueError as exc:
            raise _problem(401, "Unauthorized", "Unauthorized") from exc
        if (
            oauth.get("oauth_consumer_key") != c.consumer_key
            or oauth.get("oauth_token") != c.access_token
            or oauth.get("oauth_signature_method") != "HMAC-SHA1"
            or oauth.get("oauth_version", "1.0") != "1.0"
        ):
            raise _problem(401, "Unauthorized", "Unauthorized")
        try:
            stamp = int(oauth.get("oauth_timestamp", ""))
        except ValueError as exc:
            raise _problem(401, "Unauthorized", "Unauthorized") from exc
        if abs(time.time() - stamp) > OAUTH_CLOCK_SKEW:
            raise _problem(401, "Unauthorized", "Unauthorized")
        path, _, query = target.partition("?")
        params = oauth_signature.collect_parameters(uri_query=query, headers={"Authorization": header})
        normalized = oauth_signature.normalize_parameters(params)
        key = f"{oauth_utils.escape(c.consumer_secret)}&{oauth_utils.escape(c.access_token_secret)}".encode()
        given = oauth.get("oauth_signature", "")
        # tweepy signs https://api.twitter.com/...; the Host header says which host it signed for.
        for scheme in ("https", "http"):
            base = oauth_signature.signature_base_string(
                method, oauth_signature.base_string_uri(f"{scheme}://{host}{path}"), normalized
            )
            expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()
            if hmac.compare_digest(expected, given):
                break
        else:
            raise _problem(401, "Unauthorized", "Unauthorized")
        nonce = (oauth.get("oauth_nonce", ""), str(stamp))
        with self._lock:
            if nonce in self._nonces:
                raise _problem(401, "Unauthorized", "Unauthorized")
            self._nonces.add(nonce)

    def _rate(self, endpoint: str, fault: Fault | None) -> tuple[dict[str, str], bool]:
        now = time.time()
        with self._lock:
            window = self._windows[endpoint]
            if now >= window.reset_at:
                window.used, window.reset_at = 0, now + window.seconds
            if fault is not None and fault.kind == "rate_limited":
                window.used, window.reset_at = window.limit + 1, now + fault.delay
            else:
                window.used += 1
            headers = {
                "x-rate-limit-limit": str(window.limit),
                "x-rate-limit-remaining": str(max(window.limit - window.used, 0)),
                "x-rate-limit-reset": str(math.ceil(window.reset_at)),
            }
            return headers, window.used > window.limit

    def _next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for key in (endpoint, "*"):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    # -- endpoints --

    def _fields(self, query: dict[str, str]) -> tuple[set[str], set[str], set[str]]:
        def split(name: str, allowed: frozenset[str]) -> set[str]:
            values = {v for v in query.get(name, "").split(",") if v}
            bad = sorted(values - allowed)
            if bad:
                raise _invalid(
                    name,
                    query[name],
                    f"The `{name}` query parameter value [{bad[0]}] is not one of [{','.join(sorted(allowed))}]",
                )
            return values

        return (
            split("tweet.fields", TWEET_FIELDS),
            split("user.fields", USER_FIELDS),
            split("expansions", TWEET_EXPANSIONS),
        )

    @staticmethod
    def _check_params(query: dict[str, str], allowed: frozenset[str]) -> None:
        for name in query:
            if name not in allowed:
                raise _invalid(
                    name, query[name], f"The query parameter [{name}] is not one of [{','.join(sorted(allowed))}]"
                )

    @staticmethod
    def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
        raw = query.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise _invalid(name, raw, f"The `{name}` query parameter value [{raw}] is not between {low} and {high}")
        return int(raw)

    @staticmethod
    def _id_param(query: dict[str, str], name: str) -> int | None:
        raw = query.get(name)
        if raw is None:
            return None
        if not re.fullmatch(r"[0-9]{1,19}", raw):
            raise _invalid(name, raw, f"The `{name}` query parameter value [{raw}] does not match ^[0-9]{{1,19}}$")
        return int(raw)

    def _page(self, tweets: list[FakeTweet], query: dict[str, str], *, token_param: str, low: int) -> dict[str, Any]:
        """Filter (since/until/time), paginate newest-first and render one page with includes and meta."""
        tweet_fields, user_fields, expansions = self._fields(query)
        size = self._int_param(query, "max_results", 10, low, 100)
        since, until = self._id_param(query, "since_id"), self._id_param(query, "until_id")
        items = [t for t in tweets if (since is None or int(t.id) > since) and (until is None or int(t.id) < until)]
        for name, keep in (("start_time", lambda t, m: t.created_at >= m), ("end_time", lambda t, m: t.created_at < m)):
            if name in query:
                try:
                    moment = datetime.fromisoformat(query[name])
                except ValueError as exc:
                    raise _invalid(name, query[name], f"Invalid '{name}':'{query[name]}'.") from exc
                items = [t for t in items if keep(t, moment)]
        token = query.get(token_param)
        if token is not None:
            if not re.fullmatch(r"[0-9a-z]{1,40}", token):
                raise _invalid(token_param, token, f"The `{token_param}` query parameter value [{token}] is not valid")
            start = int(token, 36)
            items = [t for t in items if int(t.id) <= start]
        page, rest = items[:size], items[size:]
        if not page:
            return {"meta": {"result_count": 0}}
        by_name = self._by_name()
        body: dict[str, Any] = {"data": [t.wire(tweet_fields, by_name) for t in page]}
        includes = self._includes(page, tweet_fields, user_fields, expansions)
        if includes:
            body["includes"] = includes
        meta: dict[str, Any] = {"newest_id": page[0].id, "oldest_id": page[-1].id, "result_count": len(page)}
        if rest:
            meta["next_token"] = _base36(int(rest[0].id))
        body["meta"] = meta
        return body

    def _by_name(self) -> dict[str, FakeUser]:
        return {u.username.lower(): u for u in self._users.values()}

    def _includes(
        self, page: list[FakeTweet], tweet_fields: set[str], user_fields: set[str], expansions: set[str]
    ) -> dict[str, Any]:
        user_ids: list[str] = []
        referenced: list[FakeTweet] = []
        by_name = self._by_name()
        for t in page:
            if "author_id" in expansions:
                user_ids.append(t.author_id)
            if "in_reply_to_user_id" in expansions and t.in_reply_to_user_id:
                user_ids.append(t.in_reply_to_user_id)
            if "entities.mentions.username" in expansions:
                for name in re.findall(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})", t.text):
                    if name.lower() in by_name:
                        user_ids.append(by_name[name.lower()].id)
            for _, tid in t.referenced:
                ref = self._tweets.get(tid)
                if ref is None or ref.deleted:
                    continue
                if "referenced_tweets.id" in expansions:
                    referenced.append(ref)
                if "referenced_tweets.id.author_id" in expansions:
                    user_ids.append(ref.author_id)
        includes: dict[str, Any] = {}
        unique_users = list(dict.fromkeys(uid for uid in user_ids if uid in self._users))
        if unique_users:
            includes["users"] = [self._users[uid].wire(user_fields) for uid in unique_users]
        unique_tweets = list({t.id: t for t in referenced}.values())
        if unique_tweets:
            includes["tweets"] = [t.wire(tweet_fields, by_name) for t in unique_tweets]
        return includes

    def _visible(self) -> list[FakeTweet]:
        # Deleted posts and posts of protected accounts are not shown to apps.
        return sorted(
            (t for t in self._tweets.values() if not t.deleted and not self._users[t.author_id].protected),
            key=lambda t: int(t.id),
            reverse=True,
        )

    def _not_found_user(self, user_id: str) -> dict[str, Any]:
        # X answers 200 with a partial error when the user does not exist.
        return {
            "errors": [
                {
                    "value": user_id,
                    "detail": f"Could not find user with id: [{user_id}].",
                    "title": "Not Found Error",
                    "resource_type": "user",
                    "parameter": "id",
                    "resource_id": user_id,
                    "type": PROBLEM_BASE + "resource-not-found",
                }
            ]
        }

    def _mentions(self, user_id: str, query: dict[str, str]) -> dict[str, Any]:
        self._check_params(query, _TIMELINE_PARAMS)
        self._id_param({"id": user_id}, "id")
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                return self._not_found_user(user_id)
            mentions = [t for t in self._visible() if _mentions_handle(t.text, user.username)][:REACHABLE_MENTIONS]
            return self._page(mentions, query, token_param="pagination_token", low=5)

    def _timeline(self, user_id: str, query: dict[str, str]) -> dict[str, Any]:
        self._check_params(query, _TIMELINE_PARAMS | {"exclude"})
        self._id_param({"id": user_id}, "id")
        exclude = {v for v in query.get("exclude", "").split(",") if v}
        if exclude - {"replies", "retweets"}:
            raise _invalid(
                "exclude", query["exclude"], "The `exclude` query parameter value is not one of [replies,retweets]"
            )
        with self._lock:
            if user_id not in self._users:
                return self._not_found_user(user_id)
            posts = [t for t in self._visible() if t.author_id == user_id][:TIMELINE_REACH]
            if "retweets" in exclude:
                posts = [t for t in posts if t.ref("retweeted") is None]
            if "replies" in exclude:
                posts = [t for t in posts if t.ref("replied_to") is None]
            return self._page(posts, query, token_param="pagination_token", low=5)

    def _search(self, query: dict[str, str]) -> dict[str, Any]:
        self._check_params(query, _SEARCH_PARAMS)
        text = query.get("query", "")
        if not text:
            raise _invalid("query", text, "The `query` query parameter can not be empty")
        if len(text) > MAX_QUERY_LENGTH:
            raise _invalid("query", text, f"The `query` query parameter value is longer than {MAX_QUERY_LENGTH}")
        oldest = datetime.now(UTC) - SEARCH_WINDOW
        since = self._id_param(query, "since_id")
        if since is not None and snowflake_time(since) < oldest:
            first = (int(oldest.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22
            raise _invalid(
                "since_id",
                str(since),
                f"Invalid 'since_id':'{since}'. 'since_id' must be a tweet id created after {_iso(oldest)}. "
                f"Please use a 'since_id' that is larger than {first}",
            )
        if "next_token" in query and "pagination_token" in query:
            raise _invalid("next_token", query["next_token"], "Use only one of next_token and pagination_token")
        token_param = "pagination_token" if "pagination_token" in query else "next_token"
        with self._lock:
            matcher = _QueryParser(text, self).parse()
            hits = [t for t in self._visible() if t.created_at >= oldest and matcher(t)]
            return self._page(hits, query, token_param=token_param, low=10)

    def _lookup(self, query: dict[str, str]) -> dict[str, Any]:
        self._check_params(query, frozenset({"ids", *_FIELD_PARAMS}))
        raw = query.get("ids", "")
        ids = [i for i in raw.split(",") if i]
        if not 1 <= len(ids) <= 100:
            raise _invalid("ids", raw, f"The `ids` query parameter value [{raw}] must have between 1 and 100 ids")
        for tweet_id in ids:
            self._id_param({"ids": tweet_id}, "ids")
        tweet_fields, user_fields, expansions = self._fields(query)
        with self._lock:
            found, errors = [], []
            for tweet_id in ids:
                tweet = self._tweets.get(tweet_id)
                if tweet is None or tweet.deleted:
                    errors.append(
                        {"value": tweet_id, "detail": f"Could not find tweet with ids: [{tweet_id}].",
                         "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                         "resource_id": tweet_id, "type": PROBLEM_BASE + "resource-not-found"}
                    )  # fmt: skip
                elif self._users[tweet.author_id].protected:
                    errors.append(
                        {"value": tweet_id, "detail": f"Sorry, you are not authorized to see the Tweet with ids: "
                         f"[{tweet_id}].", "title": "Authorization Error", "resource_type": "tweet",
                         "parameter": "ids", "resource_id": tweet_id, "section": "data",
                         "type": PROBLEM_BASE + "not-authorized-for-resource"}
                    )  # fmt: skip
                else:
                    found.append(tweet)
            body: dict[str, Any] = {}
            if found:
                by_name = self._by_name()
                body["data"] = [t.wire(tweet_fields, by_name) for t in found]
                includes = self._includes(found, tweet_fields, user_fields, expansions)
                if includes:
                    body["includes"] = includes
            if errors:
                body["errors"] = errors
            return body

    def _me(self, query: dict[str, str]) -> dict[str, Any]:
        self._check_params(query, frozenset({"user.fields", "expansions", "tweet.fields"}))
        _, user_fields, _ = self._fields({k: v for k, v in query.items() if k != "expansions"})
        with self._lock:
            return {"data": self._users[self.credentials.user_id].wire(user_fields)}

    def _create(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise _ApiError(
                400,
                {
                    "errors": [{"message": "Request body is not valid JSON"}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": PROBLEM_BASE + "invalid-request",
                },
            ) from exc
        if not isinstance(body, dict):
            raise _invalid("body", str(body), "$: got null, expected object")
        for key in body:
            if key not in _CREATE_KEYS:
                raise _invalid(
                    key,
                    str(body[key]),
                    f"$.{key}: is not defined in the schema and the schema does not allow additional properties",
                )
        reply = body.get("reply")
        if reply is not None:
            if not isinstance(reply, dict) or "in_reply_to_tweet_id" not in reply:
                raise _invalid("reply", str(reply), "$.reply.in_reply_to_tweet_id: is missing but it is required")
            for key in reply:
                if key not in _REPLY_KEYS:
                    raise _invalid(
                        key,
                        str(reply[key]),
                        f"$.reply.{key}: is not defined in the schema and the "
                        "schema does not allow additional properties",
                    )
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise _invalid("text", str(text), "$.text: text or media is required")
        with self._lock:
            me = self._users[self.credentials.user_id]
            if _rough_weight(text) > 280:
                raise _problem(
                    403,
                    "Forbidden",
                    "Your Tweet text is too long. For more information on how X "
                    "determines text length see https://github.com/twitter/twitter-text.",
                )
            recent = datetime.now(UTC) - timedelta(hours=24)
            if any(t.author_id == me.id and t.text == text and t.created_at > recent for t in self._visible()):
                raise _problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
            parent_id = reply["in_reply_to_tweet_id"] if reply else None
            if parent_id is not None:
                parent = self._tweets.get(str(parent_id))
                if parent is None or parent.deleted:
                    raise _problem(
                        403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you."
                    )
                quoted = parent.ref("quoted")
                engaged = (
                    parent.author_id == me.id
                    or _mentions_handle(parent.text, me.username)
                    or (quoted is not None and quoted in self._tweets and self._tweets[quoted].author_id == me.id)
                )
                if not engaged:
                    # X (since Feb 2026) refuses programmatic replies to posts that did not summon the account.
                    raise _problem(
                        403,
                        "Forbidden",
                        "Reply to this conversation is not allowed because you have "
                        "not been mentioned or otherwise engaged by the author of the post you are "
                        "replying to.",
                    )
            tid = self.post(
                me.id, text, reply_to=str(parent_id) if parent_id else None, quote=body.get("quote_tweet_id")
            )
            return {"data": {"id": tid, "text": text, "edit_history_tweet_ids": [tid]}}

    def _admin(self, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        """Unauthenticated helpers for manual runs: add posts, read what was posted and sent, inject faults."""
        if method == "GET" and path == "/_fake/health":
            return 200, {"ok": True, "brand": self.brand.username, "brand_id": self.brand.id}
        if method == "GET" and path == "/_fake/requests":
            return 200, [vars(r) for r in self.requests(query.get("endpoint"))]
        if method == "GET" and path == "/_fake/tweets":
            author = query.get("author", self.brand.username)
            return 200, [
                {"id": t.id, "text": t.text, "created_at": _iso(t.created_at), "in_reply_to": t.ref("replied_to")}
                for t in self.posts_by(author)
            ]
        data = json.loads(raw or b"{}")
        if method == "POST" and path == "/_fake/tweets":
            tid = self.post(
                data["author"],
                data.get("text", ""),
                reply_to=data.get("reply_to"),
                quote=data.get("quote"),
                retweet=data.get("retweet"),
            )
            return 201, {"id": tid}
        if method == "POST" and path == "/_fake/faults":
            kind = data.pop("kind")
            endpoint = data.pop("endpoint", "*")
            maker = {
                "error": Fault.error,
                "rate_limited": Fault.rate_limited,
                "slow": Fault.slow,
                "malformed": Fault.malformed,
                "disconnect": Fault.disconnect,
            }[kind]
            self.inject(endpoint, maker(**data))
            return 201, {"queued": kind, "endpoint": endpoint}
        return 404, {"error": "no such admin route"}

    def handle(self, handler: _Handler) -> None:
        target = handler.path
        split = urlsplit(target)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        host = headers.get("host", "")
        if path.startswith("/_fake/"):
            status, payload = self._admin(handler.command, path, query, raw)
            handler.respond(status, json.dumps(payload).encode(), JSON, {})
            return

        endpoint, params = None, {}
        for method, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match and method == handler.command:
                endpoint, params = name, match.groupdict()
                break
        record = RecordedRequest(handler.command, path, endpoint, query, host, None, _json_or_raw(raw))
        with self._lock:
            self._log.append(record)
        rate_headers: dict[str, str] = {}

        def send(status: int, payload: Any, content_type: str = JSON) -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            record.status, record.response, record.content_type = status, _json_or_raw(body), content_type
            handler.respond(status, body, content_type, rate_headers)

        def drop() -> None:
            record.status = 0
            handler.close_connection = True

        try:
            if endpoint is None:
                raise _ApiError(404, {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}, JSON)
            record.auth = self._authenticate(handler.command, host, target, headers)
            if endpoint in ("create", "me") and record.auth != "oauth1":
                raise _problem(
                    403,
                    "Unsupported Authentication",
                    "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported "
                    "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
                    "unsupported-authentication",
                )
            fault = self._next_fault(endpoint)
            rate_headers, over = self._rate(endpoint, fault)
            if over:
                if fault is not None and fault.legacy:
                    raise _ApiError(429, {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}, JSON)
                raise _problem(429, "Too Many Requests", "Too Many Requests")
            if fault is not None and fault.kind == "error":
                title = {
                    500: "Internal Server Error",
                    502: "Bad Gateway",
                    503: "Service Unavailable",
                    504: "Gateway Timeout",
                    401: "Unauthorized",
                    403: "Forbidden",
                }.get(fault.status, "Error")
                raise _problem(fault.status, title, title)
            if fault is not None and fault.kind == "malformed":
                send(200, b'{"data":[{"id":"1","text":"trunc')
                return
            if fault is not None and fault.kind == "disconnect":
                drop()
                return
            if fault is not None and fault.kind == "slow" and not fault.process:
                time.sleep(fault.delay)
                drop()
                return
            status, payload = self._dispatch(endpoint, params, query, raw)
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)  # done, but the answer comes too late for an impatient client
        except _ApiError as err:
            send(err.status, err.body, err.content_type)
            return
        send(status, payload)

    def _dispatch(self, endpoint: str, params: dict[str, str], query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if endpoint == "mentions":
            return 200, self._mentions(params["id"], query)
        if endpoint == "timeline":
            return 200, self._timeline(params["id"], query)
        if endpoint == "search":
            return 200, self._search(query)
        if endpoint == "me":
            return 200, self._me(query)
        if endpoint == "lookup":
            return 200, self._lookup(query)
        return 201, self._create(raw)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
    return out or "0"


def _json_or_raw(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class _Handler(FakeHandler):
    server_version = "fake-x"


# --- command line ----------------------------------------------------------------------------------------------

DEMO_MENTIONS = (
    ("dana_k", "@{brand} my order #4411 never arrived and nobody answers the phone"),
    ("lee_travels", "@{brand} thanks, the new app is great!"),
    ("sam_p", "@{brand} third day without internet, still waiting for the technician"),
)


def seed_demo(server: FakeXServer, count: int) -> list[str]:
    """Post ``count`` demo mentions of the brand, oldest first."""
    now = datetime.now(UTC)
    ids = []
    for i in range(count):
        author, text = DEMO_MENTIONS[i % len(DEMO_MENTIONS)]
        ids.append(
            server.post(author, text.format(brand=server.brand.username), created_at=now - timedelta(minutes=count - i))
        )
    return ids


def _config_hint(server: FakeXServer) -> Iterator[str]:
    yield f"fake X API listening on {server.url} (brand @{server.brand.username}, user id {server.brand.id})"
    yield "config (TOML):"
    yield "  [x.brand]"
    yield f'  handle = "{server.brand.username}"'
    yield f'  user_id = "{server.brand.id}"'
    yield f'  api_base_url = "{server.url}"'
    yield "environment:"
    for key, value in server.account_secrets().items():
        yield f"  export FAIRDESK_X__BRAND__{key.upper()}={value}"
    body = json.dumps({"author": "dana_k", "text": f"@{server.brand.username} my router is broken"})
    yield f"add a mention: curl -X POST {server.url}/_fake/tweets -d '{body}'"
    yield f"see the replies: curl {server.url}/_fake/tweets?author={server.brand.username}"


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.x_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8399)
    parser.add_argument("--handle", default="acme_support", help="the brand's username")
    parser.add_argument("--user-id", default="1500000000000000001", help="the brand's numeric id")
    parser.add_argument("--seed", type=int, default=3, help="demo mentions to post at start")
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="ENDPOINT=N/SECONDS",
        help="e.g. mentions=15/900 (Basic tier); repeatable",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    server = FakeXServer(host=args.host, port=args.port, brand=args.handle, brand_id=args.user_id)
    for spec in args.rate_limit:
        endpoint, _, rest = spec.partition("=")
        limit, _, seconds = rest.partition("/")
        server.set_rate_limit(endpoint, int(limit), float(seconds or 900))
    seed_demo(server, args.seed)
    for line in _config_hint(server):
        print(line, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
