"""The platforms fairdesk can listen on, by name; each entry builds an adapter for one configured account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fairdesk.config.settings import Settings
from fairdesk.listener.base import Adapter
from fairdesk.listener.sample import make_sample_adapter

AdapterFactory = Callable[[str, Any, Settings], Adapter]


# The SDK-backed adapters are imported on first use, so a daemon that runs only the sample feed never loads them.
def _x(name: str, account: Any, settings: Settings) -> Adapter:
    from fairdesk.listener.x import make_x_adapter

    return make_x_adapter(name, account, settings)


def _bluesky(name: str, account: Any, settings: Settings) -> Adapter:
    from fairdesk.listener.bluesky import make_bluesky_adapter

    return make_bluesky_adapter(name, account, settings)


ADAPTERS: dict[str, AdapterFactory] = {"sample": make_sample_adapter, "x": _x, "bluesky": _bluesky}


def build_adapters(settings: Settings) -> dict[tuple[str, str], Adapter]:
    """One adapter per configured account, keyed by (platform, account name)."""
    return {
        (platform, name): ADAPTERS[platform](name, account, settings) for platform, name, account in settings.accounts()
    }
