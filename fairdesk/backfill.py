"""`fairdesk backfill`: re-read what the platforms still hold since a date and record it the way the poll does."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from fairdesk.daemon import Daemon
from fairdesk.jobs.poll import PollResult, record_batch
from fairdesk.listener.base import AdapterError, ReadsHistory
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import utcnow

logger = logging.getLogger(__name__)

CHUNK = 50  # posts per transaction: progress shows, and a running daemon's poll is never held up for long
Progress = Callable[[str, int, int], None]  # (account "platform/name", posts recorded so far, posts in all)


def backfill(
    daemon: Daemon, since: datetime, *, now: datetime | None = None, progress: Progress | None = None
) -> list[PollResult]:
    """Record every post each account's platform still serves from ``since`` on, through the poll's own recording
    (ledger outcome, ticket, reply and helpdesk rows; posts already in the ledger are left as they are). Replies are
    queued only for posts younger than ``reply.max_age_hours``: the running daemon's reply loop sends them. Account
    cursors are not moved: the poll goes on from where it was."""
    reply_since = (now or utcnow()) - timedelta(hours=daemon.settings.reply.max_age_hours)
    results = []
    for (platform, name), adapter in daemon.adapters.items():
        result = PollResult(platform, name)
        results.append(result)
        if not isinstance(adapter, ReadsHistory):
            result.skipped_run = "this platform cannot re-read its history"
            continue
        try:
            batch = adapter.history(since)
        except AdapterError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            logger.warning("%s/%s: backfill could not read: %s", platform, name, result.error)
            continue
        mentions = list(batch.mentions)
        if progress is not None:
            progress(f"{platform}/{name}", 0, len(mentions))
        for start in range(0, len(mentions), CHUNK):
            part = mentions[start : start + CHUNK]
            verdicts = daemon.classify([m.text for m in part])
            for attempt in range(2):
                counted = PollResult(platform, name)
                try:
                    with transaction(daemon.sessions) as session:
                        record_batch(session, part, verdicts, counted, reply_since=reply_since)
                    break
                except IntegrityError:
                    # A running daemon recorded one of these posts meanwhile: record the chunk again, now known.
                    if attempt:
                        raise
            _add(result, counted)
            if progress is not None:
                progress(f"{platform}/{name}", start + len(part), len(mentions))
        if batch.gap:
            result.skipped_run = "the platform serves only part of that period"
        if result.new:
            outcomes = ", ".join(f"{count} {outcome}" for outcome, count in sorted(result.outcomes.items()))
            logger.info("%s/%s backfill: %d new (%s)", platform, name, result.new, outcomes)
    if any(r.replies_queued for r in results):
        daemon.wake("replies")
    return results


def _add(total: PollResult, part: PollResult) -> None:
    total.fetched += part.fetched
    total.new += part.new
    total.replies_queued += part.replies_queued
    total.outcomes.update(part.outcomes)


__all__ = ["backfill"]
