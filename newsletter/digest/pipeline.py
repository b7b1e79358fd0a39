"""The digest pipeline: gather -> select -> edition -> render per locale -> plan -> send.

:func:`run_digest` is what ``newsletter digest`` and the scheduler call: it merges the
lists' files, gathers, then runs each segment, for real (:mod:`.edition`: an edition keyed
by (segment, period), resumed from its rows, stoppable) or as a trial (:mod:`.trial`:
dry run, test send, preview; nothing stored).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from newsletter.audience.explain import explain
from newsletter.audience.subscribers import sync_lists
from newsletter.clock import utcnow
from newsletter.config import Settings
from newsletter.digest.edition import Digest, DigestReport, SegmentResult
from newsletter.digest.trial import dry_run_segment, preview, send_test
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.run import gather
from newsletter.models import OnProgress
from newsletter.send.providers.base import Provider
from newsletter.store import Store

__all__ = [
    "Digest",
    "DigestReport",
    "SegmentResult",
    "preview",
    "run_digest",
]


def run_digest(
    settings: Settings,
    *,
    store: Store | None = None,
    provider: Provider | None = None,
    segments: Sequence[str] | None = None,
    item_ids: Sequence[int] | None = None,
    dry_run: bool = False,
    test_to: str | None = None,
    do_gather: bool = True,
    on_progress: OnProgress | None = None,
    stop: threading.Event | None = None,
    client: GuardedClient | None = None,
) -> DigestReport:
    """Gather, then build and send this period's edition for each segment.

    ``dry_run`` stores and sends nothing; ``test_to`` sends one message per locale to that
    address only. Setting ``stop`` (from another thread) ends the run early and loses
    nothing: no further source is gathered, no new batch starts, segments not started are
    left for the next run; the results say which segments were ``stopped``. ``client`` is
    the HTTP client for gathering (one is built when none is given).
    """
    own_store = store is None
    store = store or Store.open(settings.database_url())
    try:
        # built first: a missing catalog or a broken template fails before any work is done
        digest = Digest(settings, store, provider=provider, on_progress=on_progress, stop=stop)

        async def go(store: Store) -> DigestReport:
            try:
                chosen = digest.chosen(segments)
                lists = sync_lists(settings, store, utcnow()) if not dry_run else {}
                gathered = None
                if do_gather and not item_ids:
                    gathered = gather(settings, store, client=client, stop=stop)
                if test_to:
                    results = [await send_test(digest, s, test_to, item_ids) for s in chosen]
                elif dry_run:
                    results = [dry_run_segment(digest, s, item_ids) for s in chosen]
                else:
                    results = await digest.run([s.name for s in chosen], item_ids=item_ids)
                overlaps = None
                if dry_run:
                    overlaps = explain(settings, store, digest.clock(), details=False)
                return DigestReport(gathered, results, None, lists, overlaps)
            finally:
                await digest.aclose()

        report = asyncio.run(go(store))
        report.outbox = None if dry_run else digest.write_outbox_index()
        return report
    finally:
        if own_store:
            store.close()
