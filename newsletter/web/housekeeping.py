"""Housekeeping while the web app runs: expired sign-ups, old webhook event ids and
desk sessions past their timeouts go.

The app runs it once at start and then every few hours, so a long-running server keeps
its tables small and holds no unconfirmed sign-up longer than its link is valid. A
failure (the database is down, say) is logged and retried next time; it never stops the
app. ``newsletter subscribers purge-pending`` runs the sign-up part by hand.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from starlette.concurrency import run_in_threadpool

from newsletter.audience.selfservice import purge_pending
from newsletter.config import Settings
from newsletter.store import Store
from newsletter.web.context import WebContext

log = logging.getLogger("newsletter.web")

#: seconds between two runs while the app is up
EVERY: Final = 6 * 3600.0


@dataclass(frozen=True)
class Housekept:
    """What one run deleted."""

    pending_subscribers: int
    pending_requests: int
    webhook_events: int
    desk_sessions: int = 0
    #: engagement events older than ``[tracking] retention_days`` folded into counts
    engagement_folded: int = 0


def housekeep(settings: Settings, store: Store, now: datetime) -> Housekept:
    """Purge expired sign-ups (:func:`~newsletter.audience.selfservice.purge_pending`), the
    webhook event ids older than ``webhooks.retention_days`` and expired desk sessions;
    engagement events older than ``tracking.retention_days`` are folded into per-edition
    counts first."""
    purged = purge_pending(settings, store, now)
    # fold first: prune keeps engagement rows, fold unlinks them, the next prune drops them
    folded = store.engagement.fold(now - timedelta(days=settings.tracking.retention_days))
    pruned = store.webhooks.prune(now - timedelta(days=settings.webhooks.retention_days))
    sessions = store.desk.purge_sessions(
        now - timedelta(minutes=settings.desk.idle_timeout_minutes),
        now - timedelta(hours=settings.desk.absolute_timeout_hours),
    )
    return Housekept(purged.subscribers, purged.requests, pruned, sessions, folded)


async def housekeep_logged(ctx: WebContext) -> Housekept | None:
    """One run in a worker thread; logged, and None (not raised) when it failed."""
    try:
        done = await run_in_threadpool(housekeep, ctx.settings, ctx.store, ctx.clock())
    except Exception:
        log.exception("housekeeping failed; it runs again in %d hours", EVERY // 3600)
        return None
    if done.engagement_folded:
        log.info("housekeeping: %d old engagement event(s) folded", done.engagement_folded)
    if done.pending_subscribers or done.pending_requests or done.webhook_events:
        log.info(
            "housekeeping: %d unconfirmed sign-up(s) and %d request(s) purged, "
            "%d old webhook event id(s) pruned",
            done.pending_subscribers,
            done.pending_requests,
            done.webhook_events,
        )
    if done.desk_sessions:
        log.info("housekeeping: %d expired desk session(s) deleted", done.desk_sessions)
    return done


async def housekeep_every(ctx: WebContext, seconds: float) -> None:
    """Run :func:`housekeep_logged` every ``seconds`` until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        await housekeep_logged(ctx)
