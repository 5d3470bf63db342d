"""Rate limits for the public pages and the login: fixed windows counted in the database, shared by every daemon."""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass

from fastapi import Request

from ticketing.db import SessionFactory, transaction
from ticketing.store import count_hit, purge_counters

logger = logging.getLogger(__name__)

PURGE_CHANCE = 0.01  # about one request in a hundred also deletes windows that have ended
KEEP_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``hits`` requests per ``seconds``-long window."""

    hits: int
    seconds: int


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits in force. A viral reply link is opened by many people, so views per link are generous."""

    view_per_token: Limit = Limit(600, 3600)
    view_per_client: Limit = Limit(120, 600)
    submit_per_token: Limit = Limit(10, 3600)
    submit_per_client: Limit = Limit(20, 3600)
    contact_per_client: Limit = Limit(10, 3600)
    login_per_client: Limit = Limit(30, 900)


class RateLimited(Exception):
    """Too many requests in this window; ``retry_after`` is the number of seconds until it ends."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after}s")
        self.retry_after = retry_after


def client_key(request: Request) -> str:
    # uvicorn already puts the proxy's X-Forwarded-For client here when the proxy is trusted (--forwarded-allow-ips).
    return request.client.host if request.client else "unknown"


def check(
    sessions: SessionFactory, secret: str, checks: list[tuple[str, str, Limit]], now: float | None = None
) -> None:
    """Count one hit on each (name, value, limit) and raise RateLimited if any window is over its limit.

    Values (tokens, addresses) are stored only as keyed hashes, so the counters table holds nothing personal.
    """
    now = time.time() if now is None else now
    worst = 0
    with transaction(sessions) as session:
        for name, value, limit in checks:
            started = int(now // limit.seconds * limit.seconds)
            digest = hmac.new(secret.encode(), f"{name}:{value}".encode(), hashlib.sha256).hexdigest()[:40]
            hits = count_hit(session=session, bucket=f"{name}:{digest}", started=started)
            if hits > limit.hits:
                worst = max(worst, started + limit.seconds - int(now))
        if random.random() < PURGE_CHANCE:
            purge_counters(session=session, before=int(now) - KEEP_SECONDS)
    if worst:
        logger.info("rate limit hit (%s)", ", ".join(name for name, _, _ in checks))
        raise RateLimited(max(1, worst))
