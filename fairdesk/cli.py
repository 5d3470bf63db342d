"""The `fairdesk` command line: run, init, config, tickets, report, doctor, backfill, agent, classify, train, eval."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from fairdesk.config.example import example_toml
from fairdesk.config.settings import ConfigError, Settings, ensure_data_dir, load_settings, masked_dump
from fairdesk.logs import LogFormat, configure_logging

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlmodel import Session

logger = logging.getLogger(__name__)

app = typer.Typer(
    help="fairdesk: every social complaint becomes an ordinary ticket, reach stripped.", no_args_is_help=True
)
agent_app = typer.Typer(help="Manage agent accounts.", no_args_is_help=True)
app.add_typer(agent_app, name="agent")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (default: $FAIRDESK_CONFIG, else the embedded demo)."),
]


LogFormatOption = Annotated[
    LogFormat, typer.Option("--log-format", help="text: plain lines; json: one JSON object per line.")
]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    """The boundary for start-up faults: library code raised one line naming the problem and the fix; print it.

    Configuration mistakes exit 2, faults in the environment (the database) exit 1; the traceback is kept for DEBUG.
    """
    logger.debug("start-up failed", exc_info=exc)
    typer.echo(f"fairdesk: {exc}", err=True)
    raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from exc


@contextmanager
def _startup() -> Iterator[None]:
    from fairdesk.ticketing.db import DatabaseStartupError

    try:
        yield
    except (ConfigError, DatabaseStartupError) as exc:
        _fail(exc)


def _check_templates(settings: Settings) -> None:
    """A reply template that cannot fit a platform's post length is a config error now, not a failed post later."""
    checks = []
    if settings.x:
        from fairdesk.listener.x import check_template as check_x

        checks.append(("x", check_x))
    if settings.bluesky:
        from fairdesk.listener.bluesky import check_template as check_bsky

        checks.append(("bluesky", check_bsky))
    for platform, check in checks:
        try:
            check(settings.reply.template, settings.public_url)
        except ValueError as exc:
            raise ConfigError(f"config key `reply.template`: too long for {platform}: {exc}") from exc


@app.command()
def run(config: ConfigOption = None, log_format: LogFormatOption = "text") -> None:
    """Run the daemon: poll every account, file tickets, send replies, serve the web pages."""
    from fairdesk.app import build, serve
    from fairdesk.ticketing.agents import ensure_first_agent
    from fairdesk.ticketing.db import transaction

    settings = _settings(config)
    configure_logging(settings.log_level, log_format)
    with _startup():
        _check_templates(settings)
        ensure_data_dir(settings.data_dir)
        daemon = build(settings)
        with transaction(daemon.sessions) as session:
            first = ensure_first_agent(session=session)
    accounts = ", ".join(f"{p}/{n}" for p, n, _ in settings.accounts()) or "none"
    typer.echo(f"fairdesk: database {_safe_url(settings.resolved_database_url)}; accounts: {accounts}")
    if first:
        typer.echo(f"fairdesk: created agent '{first[0]}' with password: {first[1]}")
        typer.echo("          (shown once; add more agents with `fairdesk agent add NAME`)")

    def ready(url: str) -> None:
        typer.echo(f"fairdesk: web pages on {url}  (agent queue: {url}/agent, health: {url}/healthz)")
        if settings.sample:
            typer.echo(f"fairdesk: sample feed replies appear on {url}/sample")
        typer.echo("fairdesk: press Ctrl+C to stop")

    serve(daemon, on_ready=ready)


def _safe_url(url: str) -> str:
    from fairdesk.config.masking import mask_url

    return mask_url(url)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example config.")] = Path("fairdesk.toml"),
) -> None:
    """Write a commented example config file."""
    if path.exists():
        typer.echo(f"fairdesk: {path} exists; not overwriting it", err=True)
        raise typer.Exit(1)
    path.write_text(example_toml(), encoding="utf-8")
    typer.echo(f"fairdesk: wrote {path}; run with `fairdesk run --config {path}`")


@app.command("config")
def show_config(config: ConfigOption = None) -> None:
    """Print the effective configuration, secrets masked."""
    settings = _settings(config)
    typer.echo(json.dumps(masked_dump(settings), indent=2, default=str))


def _existing_database(settings: Settings) -> Engine:
    """The configured database, migrated; a SQLite file that is not there is no data (exit 1), not a new database."""
    from fairdesk.ticketing.db import make_engine, migrate, missing_sqlite_file

    if (missing := missing_sqlite_file(settings.resolved_database_url)) is not None:
        typer.echo(
            f"fairdesk: no data here: {missing} does not exist (run from the folder `fairdesk run` ran in, or "
            "pass its --config)",
            err=True,
        )
        raise typer.Exit(1)
    with _startup():
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
    return engine


@app.command()
def tickets(
    config: ConfigOption = None,
    status: Annotated[str, typer.Option(help="A status, 'active' or '' for all.")] = "active",
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
) -> None:
    """List the queue in the terminal, most urgent first."""
    from fairdesk.ticketing.db import session_factory, transaction
    from fairdesk.ticketing.store import QueueFilter, queue

    engine = _existing_database(_settings(config))
    with transaction(session_factory(engine)) as session:
        rows = queue(session=session, filters=QueueFilter(status=status or None), limit=limit)
        if not rows:
            typer.echo("no tickets")
        else:
            typer.echo(f"{'REF':<9}  {'PRI':<3}  {'STATUS':<8} {'CHANNEL':<16} SUBJECT")
        for t in rows:
            where = f"{t.channel}/{t.platform}" if t.platform else t.channel
            subject = t.subject.encode("unicode_escape").decode("ascii") if not t.subject.isprintable() else t.subject
            typer.echo(f"{t.ref:<9}  P{t.priority:<2}  {t.status:<8} {where:<16} {subject[:70]}")
    engine.dispose()


@app.command()
def report(
    config: ConfigOption = None,
    since: Annotated[
        str | None, typer.Option(help="First day or time (UTC unless given); default: 30 days ago.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last day (included) or end time; default: now.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV, one row per group, times in seconds.")] = False,
    anonymous: Annotated[
        bool, typer.Option("--anonymous", help="Only what may be published: cells under 5 tickets are suppressed.")
    ] = False,
) -> None:
    """The fairness report: first response, resolution and reply coverage by channel, platform and triage."""
    from fairdesk.ticketing.db import session_factory, transaction
    from fairdesk.ticketing.report import build_report, parse_period
    from fairdesk.ticketing.report_export import anonymous as anonymise
    from fairdesk.ticketing.report_export import csv_text, table_text

    settings = _settings(config)
    try:
        start, end = parse_period(since, until)
    except ValueError as exc:
        typer.echo(f"fairdesk: {exc}", err=True)
        raise typer.Exit(2) from exc
    engine = _existing_database(settings)
    with transaction(session_factory(engine)) as session:
        figures = build_report(session=session, since=start, until=end)
    engine.dispose()
    figures = anonymise(figures) if anonymous else figures
    typer.echo(csv_text(figures) if as_csv else table_text(figures), nl=False)


@app.command()
def doctor(config: ConfigOption = None) -> None:
    """Check config, database, each account's credentials, each helpdesk, the public URL and SMTP; one line each."""
    from fairdesk.doctor import run_checks

    failed = 0
    for check in run_checks(config):
        typer.echo(check.line())
        failed += check.ok is False
    if failed:
        typer.echo(f"fairdesk: {failed} check(s) failed", err=True)
        raise typer.Exit(1)


@app.command()
def backfill(
    since: Annotated[datetime, typer.Option(help="Re-read posts from this date or time on (UTC unless given).")],
    config: ConfigOption = None,
) -> None:
    """Re-read what the platforms still hold since a date and record each post's outcome (no replies to old posts)."""
    from fairdesk.app import build
    from fairdesk.backfill import backfill as run_backfill

    settings = _settings(config)
    configure_logging(settings.log_level)
    with _startup():
        ensure_data_dir(settings.data_dir)
        daemon = build(settings)

    def progress(account: str, done: int, total: int) -> None:
        typer.echo(f"backfill {account}: {done}/{total} posts recorded", err=True)

    try:
        results = run_backfill(daemon, since if since.tzinfo else since.replace(tzinfo=UTC), progress=progress)
    finally:
        daemon.close()
    failed = False
    for r in results:
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(r.outcomes.items())) or "nothing new"
        note = f" ({r.error or r.skipped_run})" if r.error or r.skipped_run else ""
        typer.echo(
            f"{r.platform}/{r.account}: {r.fetched} posts read, {r.new} new: {outcomes}; "
            f"{r.replies_queued} replies queued{note}"
        )
        failed = failed or r.error is not None
    if failed:
        raise typer.Exit(1)


PasswordStdin = Annotated[bool, typer.Option(help="Read the password from standard input.")]


def _change_agents(config: Path | None, name: str, password_stdin: bool, action: str) -> None:
    from fairdesk.ticketing.agents import AgentError, add_agent, set_password
    from fairdesk.ticketing.db import make_engine, migrate, session_factory, transaction

    settings = _settings(config)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _startup():
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
    change = add_agent if action == "added" else set_password
    try:
        with transaction(session_factory(engine)) as session:
            change(session=session, name=name, password=password)
    except AgentError as exc:
        typer.echo(f"fairdesk: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(f"fairdesk: agent {name} {action}")


@agent_app.command("add")
def agent_add(
    name: Annotated[str, typer.Argument(help="The agent's login name.")],
    config: ConfigOption = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an agent account (the password is stored as an argon2 hash)."""
    _change_agents(config, name, password_stdin, "added")


@agent_app.command("passwd")
def agent_passwd(
    name: Annotated[str, typer.Argument(help="The agent's login name.")],
    config: ConfigOption = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password for an agent (e.g. the first-start 'admin' whose password was lost); ends its sessions."""
    _change_agents(config, name, password_stdin, "password changed")


@contextmanager
def _agents_db(config: Path | None) -> Iterator[Session]:
    """A transaction on the configured database for an agent command; AgentError is printed and exits 1."""
    from fairdesk.ticketing.agents import AgentError
    from fairdesk.ticketing.db import make_engine, migrate, session_factory, transaction

    settings = _settings(config)
    with _startup():
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
    try:
        with transaction(session_factory(engine)) as session:
            yield session
    except AgentError as exc:
        typer.echo(f"fairdesk: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


NameArgument = Annotated[str, typer.Argument(help="The agent's login name.")]


@agent_app.command("remove")
def agent_remove(name: NameArgument, config: ConfigOption = None) -> None:
    """Delete an agent account and end its sessions (what it did stays on the tickets)."""
    from fairdesk.ticketing.agents import remove_agent

    with _agents_db(config) as session:
        remove_agent(session=session, name=name)
    typer.echo(f"fairdesk: agent {name} removed; its sessions ended")


@agent_app.command("lock")
def agent_lock(name: NameArgument, config: ConfigOption = None) -> None:
    """Lock an account: no login until `fairdesk agent unlock`, and every session ends now."""
    from fairdesk.ticketing.agents import set_locked

    with _agents_db(config) as session:
        ended = set_locked(session=session, name=name, locked=True)
    typer.echo(f"fairdesk: agent {name} locked; {ended} session(s) ended")


@agent_app.command("unlock")
def agent_unlock(name: NameArgument, config: ConfigOption = None) -> None:
    """Let a locked agent log in again."""
    from fairdesk.ticketing.agents import set_locked

    with _agents_db(config) as session:
        set_locked(session=session, name=name, locked=False)
    typer.echo(f"fairdesk: agent {name} unlocked")


@agent_app.command("sessions")
def agent_sessions(
    name: NameArgument,
    config: ConfigOption = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="End every session of this agent.")] = False,
) -> None:
    """List an agent's sessions (started, last used, from where); --revoke ends them all."""
    from fairdesk.ticketing.agents import AgentError
    from fairdesk.ticketing.logins import revoke_sessions, sessions_of
    from fairdesk.ticketing.models import Agent

    with _agents_db(config) as session:
        if session.get(Agent, name) is None:
            raise AgentError(f"there is no agent {name!r}")
        rows = sessions_of(session=session, agent=name)
        for row in rows:
            started, used = f"{row.created_at:%Y-%m-%d %H:%M}", f"{row.last_seen_at:%Y-%m-%d %H:%M}"
            typer.echo(f"started {started} UTC  last used {used} UTC  from {row.client or '?'}")
        if revoke:
            revoke_sessions(session=session, agent=name)
    if revoke:
        typer.echo(f"fairdesk: {len(rows)} session(s) of {name} ended")
    elif not rows:
        typer.echo(f"fairdesk: {name} has no sessions")


@agent_app.command("totp")
def agent_totp(
    name: NameArgument,
    config: ConfigOption = None,
    off: Annotated[bool, typer.Option("--off", help="No longer require a code from this agent.")] = False,
) -> None:
    """Require a TOTP two-factor code from an agent: prints a new secret for their authenticator app, once."""
    from fairdesk.ticketing.agents import drop_totp, require_totp
    from fairdesk.ticketing.totp import provisioning_uri

    with _agents_db(config) as session:
        if off:
            drop_totp(session=session, name=name)
        else:
            secret = require_totp(session=session, name=name)
    if off:
        typer.echo(f"fairdesk: {name} logs in without a code now")
        return
    typer.echo(f"fairdesk: {name} needs a code from an authenticator app from now on; their sessions ended.")
    typer.echo(f"          secret (shown once): {secret}")
    typer.echo(f"          or add this URI (e.g. as a QR code): {provisioning_uri(secret, name)}")


def _register_nlp_commands() -> None:
    from fairdesk.nlp.commands import classify_cmd, eval_cmd, train_cmd

    app.command("classify", help="Classify posts (arguments, or one per line on stdin); prints JSON lines.")(
        classify_cmd
    )
    app.command("train", help="Train the complaint classifier reproducibly.")(train_cmd)
    app.command("eval", help="Evaluate the classifier on a labelled CSV (text,label[,domain]).")(eval_cmd)


_register_nlp_commands()


def main() -> None:
    app()
