"""fairdesk's settings: one typed object, validated at start."""

from fairdesk.config.settings import (
    BlueskyAccount,
    ConfigError,
    NlpSettings,
    ReplySettings,
    SampleAccount,
    Settings,
    WebSettings,
    XAccount,
    load_settings,
    masked_dump,
)

__all__ = [
    "BlueskyAccount",
    "ConfigError",
    "NlpSettings",
    "ReplySettings",
    "SampleAccount",
    "Settings",
    "WebSettings",
    "XAccount",
    "load_settings",
    "masked_dump",
]
