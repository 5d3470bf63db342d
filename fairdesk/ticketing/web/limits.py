"""Rate limits for the public pages and the login: fixed windows counted in the database, shared by every daemon."""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from fastapi import Request

from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.store import count_hit, purge_counters

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
    """The limits in force, all per client: a limit per link would let one client use it up and silence the
    customer (a viral reply link is also opened by many people), and counting unknown links would cost storage."""

    view_per_client: Limit = Limit(120, 600)
    submit_per_client: Limit = Limit(20, 3600)
    contact_per_client: Limit = Limit(10, 3600)
    login_per_client: Limit = Limit(30, 900)


class RateLimited(Exception):
    """Too many requests in this window; ``retry_after`` is the number of seconds until it ends."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after}s")
        self.retry_after = retry_after


Network = IPv4Network | IPv6Network


@lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ip_network(p, strict=False) for p in proxies)


def _inside(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False  # not an address: never a proxy we trust
    return any(ip in net for net in networks)


def forwarded_client(peer: str, forwarded_for: Sequence[str], trusted: Sequence[str]) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy; then the nearest X-Forwarded-For hop
    that is not a trusted proxy (hops further left were written by the client and may be anything)."""
    networks = _networks(tuple(trusted))
    if not networks or not _inside(peer, networks):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _inside(hop, networks):
            return hop[:64]
    return peer


def client_key(request: Request) -> str:
    """Who is asking, for rate limits and login slow-downs. uvicorn is told to trust no forwarded header
    (``proxy_headers=False``); only the proxies in ``web.trusted_proxies`` are believed, here."""
    peer = request.client.host if request.client else "unknown"
    trusted = request.app.state.ctx.trusted_proxies
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), trusted)


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
