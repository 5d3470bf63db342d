"""The one typed settings object: TOML file plus FAIRDESK_* environment variables, validated at start."""

from __future__ import annotations

import os
import tomllib
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from fairdesk.config.helpdesks import HelpdeskSettings, check_homes
from fairdesk.config.masking import mask_url, mask_values

ENV_PREFIX = "FAIRDESK_"
CONFIG_ENV = "FAIRDESK_CONFIG"
DEFAULT_TEMPLATE = (
    "Thanks for telling us. We have opened ticket {ref} for you and will continue there, "
    "in the same queue as every other request: {link}"
)
PLACEHOLDER_SECRETS = {"changethis", "changeme", "secret", "password", "xxx", "todo"}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _no_placeholder(value: SecretStr | None) -> SecretStr | None:
    if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError("is a placeholder; put the real secret in the environment variable instead")
    return value


class WebSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the web pages listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port the web pages listen on (0 picks a free port).")
    secret_key: SecretStr | None = Field(
        None,
        description=(
            "Key that signs session and CSRF cookies. Unset: a random key is made once and kept in the database."
        ),
    )
    blind_triage: bool = Field(
        True, description="Show agents a pseudonym instead of the customer's handle until they choose to reveal it."
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics listener, apart from the web pages (0 picks a free port). "
        "Unset: no metrics listener.",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address the /metrics listener binds to; loopback unless Prometheus scrapes remotely."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description='Addresses or networks of your reverse proxies, e.g. ["127.0.0.1"]; only their '
        "X-Forwarded-For is believed. Empty: the connecting address is the client.",
    )
    session_idle_minutes: int = Field(
        120, ge=5, le=720, description="Minutes after which an agent session nobody used has ended."
    )

    _check_secret = field_validator("secret_key")(_no_placeholder)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network such as 10.0.0.0/8") from exc
        return value


class MailSettings(_Section):
    smtp_host: str | None = Field(
        None, description="SMTP server for agents' email replies to customers. Unset: email replies are off."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port (587 for STARTTLS, 465 for TLS).")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="How to protect the SMTP connection: starttls, tls (implicit) or none (local relay)."
    )
    smtp_username: str | None = Field(None, description="SMTP login name. Unset: send without logging in.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (set it in the environment).")
    from_address: str | None = Field(
        None, description="Sender address of email replies, e.g. support@example.com. Needed when smtp_host is set."
    )
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="Seconds to wait for the SMTP server per step.")

    _check_secret = field_validator("smtp_password")(_no_placeholder)

    @model_validator(mode="after")
    def _sender_needed(self) -> MailSettings:
        if self.smtp_host and not self.from_address:
            raise ValueError("from_address is needed when smtp_host is set (the address replies come from)")
        return self


class ReplySettings(_Section):
    template: str = Field(
        DEFAULT_TEMPLATE,
        description=(
            "The one public reply sent to everyone. Placeholders: {ref} (ticket reference), {link} (ticket page)."
        ),
    )
    interval_seconds: float = Field(5.0, gt=0, description="How often the reply job sends what the outbox holds.")
    max_attempts: int = Field(5, ge=1, le=50, description="Send attempts before a reply is recorded as failed.")
    backoff_seconds: float = Field(30.0, gt=0, description="First retry delay; it grows 2x per attempt, capped at 1 h.")
    max_age_hours: float = Field(
        48.0,
        gt=0,
        description="`fairdesk backfill` files older posts as tickets but replies only to posts younger than this.",
    )

    @field_validator("template")
    @classmethod
    def _template_has_link(cls, value: str) -> str:
        if "{link}" not in value:
            raise ValueError("must contain {link}, the ticket page the customer continues on")
        try:
            value.format(ref="FD-1", link="http://x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"has an unknown placeholder {exc}; only {{ref}} and {{link}} exist") from exc
        return value


class NlpSettings(_Section):
    threshold: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="Complaint probability at or above which a post becomes a ticket. Low on purpose: "
        "a missed complaint costs more than an extra ticket.",
    )
    model_path: Path | None = Field(None, description="A trained spaCy pipeline folder. Unset: the shipped model.")


class IncidentSettings(_Section):
    enabled: bool = Field(
        True,
        description="Link near-duplicate complaints (same category, similar words, within the window) to one "
        "incident, and join an author's new posts within the window to their open ticket.",
    )
    window_minutes: float = Field(
        120.0,
        gt=0,
        le=7 * 24 * 60,
        description="Minutes between two posts for them to belong to one incident (and one author's posts to one "
        "ticket).",
    )
    similarity: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Share of problem words two complaints must have in common (Jaccard, 0-1) to join one incident.",
    )
    min_reporters: int = Field(
        2, ge=2, le=10_000, description="Distinct reporters before the agents' queue lists an incident."
    )


class SampleAccount(_Section):
    handle: str = Field("fairdesk_demo", description="The brand handle the sample feed mentions.")
    poll_seconds: float = Field(2.0, gt=0, description="Seconds between polls of the sample feed.")
    per_poll: int = Field(3, ge=1, le=100, description="Posts the sample feed releases per poll (a steady pace).")
    feed: Path | None = Field(None, description="A JSONL feed to replay. Unset: the bundled sample feed.")


class XAccount(_Section):
    handle: str = Field(description="The brand's X username, without @.")
    user_id: str | None = Field(None, description="The brand's numeric X user id. Unset: looked up with /2/users/me.")
    bearer_token: SecretStr | None = Field(None, description="App bearer token, for reading mentions and search.")
    consumer_key: SecretStr | None = Field(None, description="OAuth 1.0a consumer (API) key, for replies.")
    consumer_secret: SecretStr | None = Field(None, description="OAuth 1.0a consumer (API) secret.")
    access_token: SecretStr | None = Field(None, description="OAuth 1.0a access token of the brand account.")
    access_token_secret: SecretStr | None = Field(None, description="OAuth 1.0a access token secret.")
    poll_seconds: float = Field(60.0, ge=1, description="Seconds between mention polls.")
    search_query: str | None = Field(
        None, description="Optional keyword-listening query; hits become tickets but are never replied to."
    )
    api_base_url: str = Field("https://api.twitter.com", description="X API host; point it at a compatible server.")

    _check_secrets = field_validator(
        "bearer_token", "consumer_key", "consumer_secret", "access_token", "access_token_secret"
    )(_no_placeholder)


class BlueskyAccount(_Section):
    handle: str = Field(description="The brand's Bluesky handle, e.g. brand.bsky.social.")
    app_password: SecretStr | None = Field(None, description="An app password for the handle (never the main one).")
    service_url: str = Field("https://bsky.social", description="The account's PDS.")
    poll_seconds: float = Field(30.0, ge=1, description="Seconds between notification polls.")
    reply_langs: list[str] = Field(
        default_factory=lambda: ["en"],
        min_length=1,
        max_length=3,  # app.bsky.feed.post#langs holds at most 3
        description="Languages of the reply template, as BCP-47 tags (e.g. en, pt-BR); Bluesky filters feeds by them.",
    )

    _check_secret = field_validator("app_password")(_no_placeholder)

    @field_validator("reply_langs")
    @classmethod
    def _bcp47(cls, tags: list[str]) -> list[str]:
        # The shape of a BCP-47 tag (RFC 5646): a 2-3 letter primary language, then 1-8 character alphanumeric subtags.
        for tag in tags:
            primary, *subtags = tag.split("-")
            ok = tag.isascii() and 2 <= len(primary) <= 3 and primary.isalpha()
            if not (ok and all(1 <= len(sub) <= 8 and sub.isalnum() for sub in subtags)):
                raise ValueError(f"{tag!r} is not a BCP-47 language tag such as en, de or pt-BR")
        return tags


Account = SampleAccount | XAccount | BlueskyAccount  # one platform account's settings


class Settings(BaseSettings):
    """Everything the daemon is told. Build it once in main() with load_settings() and pass it down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", env_ignore_empty=True, extra="forbid", validate_default=True
    )

    data_dir: Path = Field(Path("fairdesk-data"), description="Folder for the SQLite database and generated keys.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL. Unset: SQLite in data_dir. PostgreSQL: postgresql+psycopg://user@host:5432/db.",
    )
    database_wait_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="Seconds to keep retrying a database that cannot be reached at start, with a countdown in the "
        "log (0: give up at once).",
    )
    public_url: str = Field("http://127.0.0.1:8000", description="Public base URL used in reply links.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log verbosity.")
    web: WebSettings = Field(default_factory=WebSettings, description="The daemon's web pages.")
    reply: ReplySettings = Field(default_factory=ReplySettings, description="The public reply.")
    nlp: NlpSettings = Field(default_factory=NlpSettings, description="The complaint classifier.")
    mail: MailSettings = Field(default_factory=MailSettings, description="Email replies from agents to customers.")
    incidents: IncidentSettings = Field(
        default_factory=IncidentSettings, description="Grouping near-duplicate complaints into incidents."
    )
    sample: dict[str, SampleAccount] = Field(
        default_factory=dict, description="Built-in sample feed accounts, by name (the embedded default)."
    )
    x: dict[str, XAccount] = Field(default_factory=dict, description="X accounts, by name.")
    bluesky: dict[str, BlueskyAccount] = Field(default_factory=dict, description="Bluesky accounts, by name.")
    helpdesk: dict[str, HelpdeskSettings] = Field(
        default_factory=dict,
        description="Helpdesks tickets are filed into, by name (kind: rt, email, webhook). None: fairdesk's own queue.",
    )

    @field_validator("helpdesk")
    @classmethod
    def _one_home(cls, value: dict[str, BaseModel]) -> dict[str, BaseModel]:
        check_homes(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs; environment variables (secrets) override it.
        return env_settings, init_settings

    def __repr_args__(self) -> Any:
        # A repr that reaches a log or traceback shows the database URL without its password.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "database_url" and isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'fairdesk.db'}"

    def accounts(self) -> list[tuple[str, str, Account]]:
        """Every configured account as (platform, name, settings)."""
        out: list[tuple[str, str, Account]] = []
        for platform in ("sample", "x", "bluesky"):
            for name, account in getattr(self, platform).items():
                out.append((platform, name, account))
        return out


def _hint(loc: tuple[Any, ...], kind: str, msg: str) -> str:
    if kind == "extra_forbidden":
        return "unknown setting; check its spelling or remove it (`fairdesk init` writes every known key)"
    if kind == "missing":
        return "is required; add it to the config file"
    if kind in ("int_parsing", "float_parsing", "bool_parsing"):
        return f"{msg.lower()}; in TOML write numbers and booleans without quotes"
    return msg


def format_validation_error(exc: ValidationError) -> str:
    """One line: the first bad key, what is wrong and how to fix it."""
    errors = exc.errors()
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = f"config key `{key}`: {_hint(first['loc'], first['type'], first['msg'])}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return message


def config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist; `fairdesk init {path}` writes an example") from exc
    except OSError as exc:
        raise ConfigError(
            f"config file {path} cannot be read ({exc.strerror or exc}); pass a readable TOML file with --config"
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
            "save it as UTF-8 TOML (`fairdesk init` writes an example)"
        ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}; fix that line") from exc


def ensure_data_dir(path: Path) -> None:
    """Create the data folder and make sure this process can write in it; ConfigError names `data_dir` if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        # mkdir succeeds on an existing folder we cannot write; only a real write tells.
        probe = path / f".fairdesk-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"config key `data_dir`: cannot write to {path} ({exc.strerror or exc}); make it a folder this user "
            "can write, or choose another"
        ) from exc


def load_settings(path: Path | None = None) -> Settings:
    """Read the TOML file (``--config`` or FAIRDESK_CONFIG) and the environment; raise ConfigError if unusable.

    With no config file at all, the embedded default runs: SQLite in ./fairdesk-data and the sample feed.
    """
    path = config_path(path)
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_config(path)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc
    if path is None and not settings.accounts():
        settings.sample["demo"] = SampleAccount()
    return settings


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data: every SecretStr shown as '**********', every password or key inside a
    URL (``database_url``, helpdesk URLs) as '***'."""
    dumped: dict[str, Any] = mask_values(settings.model_dump(mode="json"))
    return dumped
