"""Writes the commented example config from the settings' own help text, so it can never fall out of date."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from fairdesk.config.helpdesks import EmailHelpdesk, RtHelpdesk, WebhookHelpdesk, ZammadHelpdesk, ZendeskHelpdesk
from fairdesk.config.settings import BlueskyAccount, SampleAccount, Settings, XAccount

HEADER = """\
# fairdesk configuration (TOML). Every key is optional unless marked required.
# Secrets (tokens, passwords) belong in environment variables, not in this file:
#   FAIRDESK_<SECTION>__<ACCOUNT>__<KEY>, e.g. FAIRDESK_X__ACME__BEARER_TOKEN=...
# Check the effective configuration with `fairdesk config --config THIS_FILE`.
"""

EXAMPLE_ACCOUNTS: list[tuple[str, str, type[BaseModel], dict[str, Any], bool]] = [
    ("sample", "demo", SampleAccount, {}, True),
    ("x", "acme", XAccount, {"handle": "acme_support"}, False),
    ("bluesky", "acme", BlueskyAccount, {"handle": "acme.bsky.social"}, False),
    ("helpdesk", "rt", RtHelpdesk, {"kind": "rt", "url": "https://rt.example.com", "queue": "General"}, False),
    (
        "helpdesk",
        "mailbox",
        EmailHelpdesk,
        {"kind": "email", "to": "support@example.com", "from_address": "fairdesk@example.com"},
        False,
    ),
    ("helpdesk", "hooks", WebhookHelpdesk, {"kind": "webhook", "url": "https://hooks.example.com/fairdesk"}, False),
    (
        "helpdesk",
        "zendesk",
        ZendeskHelpdesk,
        {"kind": "zendesk", "subdomain": "acme", "email": "fairdesk-bot@example.com"},
        False,
    ),
    (
        "helpdesk",
        "zammad",
        ZammadHelpdesk,
        {"kind": "zammad", "url": "https://zammad.example.com", "group": "Users", "customer": "social@example.com"},
        False,
    ),
]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value, ensure_ascii=False)


def _field_lines(name: str, info: FieldInfo, value: Any, *, active: bool, secret_env: str | None) -> list[str]:
    lines = [f"# {info.description}"]
    required = info.is_required()
    if secret_env is not None and info.annotation in (SecretStr, SecretStr | None):
        lines.append(f"# secret: set {secret_env}{name.upper()} in the environment")
        return lines
    if value is None:
        lines.append(f"# {name} = ")
        return lines
    prefix = "" if (active and (required or name in ("handle",))) else "# "
    if required and secret_env is not None and info.annotation is SecretStr:
        return [*lines, f"# secret: set {secret_env}{name.upper()} in the environment"]
    lines.append(f"{prefix}{name} = {_toml_value(value)}" + ("   # required" if required else ""))
    return lines


def example_toml() -> str:
    out = [HEADER]
    top = Settings.model_fields
    for name in ("data_dir", "database_url", "database_wait_seconds", "public_url", "log_level"):
        default = top[name].get_default(call_default_factory=True)
        out += _field_lines(name, top[name], default, active=False, secret_env=None)
    for section in ("web", "reply", "nlp", "mail", "incidents"):
        model = top[section].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        out.append(f"\n# {top[section].description}\n[{section}]")
        for name, info in model.model_fields.items():
            env = f"FAIRDESK_{section.upper()}__"
            out += _field_lines(name, info, info.get_default(call_default_factory=True), active=False, secret_env=env)
    for platform, account, model, values, active in EXAMPLE_ACCOUNTS:
        marker = "" if active else "# "
        out.append(f"\n# {top[platform].description} Remove the leading '# ' to enable.")
        out.append(f"{marker}[{platform}.{account}]")
        fields = sorted(model.model_fields.items(), key=lambda item: item[0] != "kind")  # kind first: it picks the rest
        for name, info in fields:
            value = values.get(name, None if info.is_required() else info.get_default(call_default_factory=True))
            env = f"FAIRDESK_{platform.upper()}__{account.upper()}__"
            lines = _field_lines(name, info, value, active=active, secret_env=env)
            if not active and name == "handle":
                lines[-1] = "# " + lines[-1].lstrip("# ")
            out += lines
    return "\n".join(out) + "\n"
