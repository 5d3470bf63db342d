"""How the X adapter's requests travel: a timeout on each, an optional compatible host, bounded retries."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

__all__ = ["DEFAULT_API_BASE", "DEFAULT_TIMEOUT", "RetryPolicy", "XTransport"]

DEFAULT_API_BASE = "https://api.twitter.com"  # tweepy 4.17 hard-codes this host
DEFAULT_TIMEOUT = 10.0  # seconds per HTTP request; tweepy sets none


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries inside one call for 5xx and network faults (never for creating a post)."""

    attempts: int = 3
    initial: float = 0.5  # seconds; doubles per attempt, plus up to `initial` of jitter
    maximum: float = 5.0
    deadline: float = 30.0  # no call spends longer than this retrying


class XTransport(HTTPAdapter):
    """Gives every request a timeout and, for a non-default base URL, sends it there with Host kept as X's.

    tweepy builds ``https://api.twitter.com`` + route and signs that URL; keeping the Host header lets a compatible
    server rebuild the signed URL and verify the OAuth 1.0a signature.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__()
        base = base_url.rstrip("/")
        self._base = None if base == DEFAULT_API_BASE else base
        self._timeout = timeout

    def send(  # the unannotated parameters pass through to HTTPAdapter.send as they came
        self, request: requests.PreparedRequest, stream=False, timeout=None, verify=True, cert=None, proxies=None
    ) -> requests.Response:
        if timeout is None:
            timeout = self._timeout
        url = request.url
        if self._base is not None and url and url.startswith(DEFAULT_API_BASE + "/"):
            request = request.copy()
            request.headers["Host"] = urlsplit(DEFAULT_API_BASE).netloc
            request.url = self._base + url[len(DEFAULT_API_BASE) :]
            if proxies:  # chosen for api.twitter.com; choose again for the real destination
                proxies = get_environ_proxies(request.url)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
