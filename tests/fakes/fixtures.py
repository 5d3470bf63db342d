"""pytest fixtures for the fake X server: register with ``pytest_plugins = ["tests.fakes.fixtures"]``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fairdesk.config.settings import XAccount
from fairdesk.listener.x import RetryPolicy, XAdapter
from tests.fakes.x_server import FakeXServer

# Retries short enough that fault tests take milliseconds, not the production seconds. The timeout stays generous
# for a busy CI machine; timeout tests pass a short one to x_adapter_with(timeout=...).
FAST_RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.05, deadline=10.0)
FAST_TIMEOUT = 2.0
MakeAdapter = Callable[..., XAdapter]  # the type of the x_adapter_with fixture


@pytest.fixture
def x_server() -> Iterator[FakeXServer]:
    """A fake X API v2 on 127.0.0.1 (random port) in a thread; the brand is @acme_support.

    Example: ``post_id = x_server.post("dana", "@acme_support my order never arrived")``
    """
    with FakeXServer() as server:
        yield server


@pytest.fixture
def x_account(x_server: FakeXServer) -> XAccount:
    """XAccount settings pointing at ``x_server`` with its credentials (user_id set, no search query).

    Example: ``XAdapter("brand", x_account.model_copy(update={"search_query": "acme"}))``
    """
    return XAccount(
        handle=x_server.brand.username,
        user_id=x_server.brand.id,
        api_base_url=x_server.url,
        **x_server.account_secrets(),
    )


@pytest.fixture
def x_adapter(x_account: XAccount) -> Iterator[XAdapter]:
    """The real XAdapter (unmodified tweepy.Client over HTTP) on ``x_server``, with fast retries and timeouts.

    Example: ``batch = x_adapter.fetch(None)``
    """
    adapter = XAdapter("brand", x_account, timeout=FAST_TIMEOUT, retry=FAST_RETRY)
    yield adapter
    adapter.close()


@pytest.fixture
def x_adapter_with(x_account: XAccount) -> Iterator[MakeAdapter]:
    """Builds more XAdapters on ``x_server`` with some settings changed (fast retries); all closed after the test.

    Example: ``adapter = x_adapter_with(search_query="acme -is:retweet", user_id=None)``; ``timeout=`` sets the
    per-request timeout and ``clock=`` the adapter's clock (a test can move it past a rate-limit reset).
    """
    made: list[XAdapter] = []

    def make(*, timeout: float = FAST_TIMEOUT, clock: Callable[[], float] = time.time, **changes: Any) -> XAdapter:
        adapter = XAdapter(
            "brand", x_account.model_copy(update=changes), timeout=timeout, retry=FAST_RETRY, clock=clock
        )
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()
