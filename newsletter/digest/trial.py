"""Trial runs of a digest: preview, dry run and test send.

They select and render exactly as a real run would (:class:`~newsletter.digest.edition.Digest`
provides the parts) but create no edition and record nothing: a preview or dry run sends
nothing at all, a test send one message per locale to one address.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from newsletter.audience.segments import Routing
from newsletter.config import Segment, Settings
from newsletter.digest.edition import Digest, SegmentResult
from newsletter.digest.select import period_key, skip_reason
from newsletter.digest.stories import MANUAL_PREFIX, manual_period, select_stories
from newsletter.errors import NewsletterError
from newsletter.models import RenderedVariant, ResultStatus
from newsletter.render.preview import PageEntry, write_index, write_variant
from newsletter.send.compose import Composer, Recipient
from newsletter.store import Store

__all__ = ["dry_run_segment", "preview", "preview_segment", "recipient_locales", "send_test"]


def recipient_locales(
    settings: Settings, store: Store, segment: Segment, period: str, now: datetime
) -> dict[str, int]:
    """How many of the recipients of ``segment``'s edition of ``period`` read each locale
    (subscribers who go to another segment left out, as a real run would)."""
    counts: dict[str, int] = {}
    routing = Routing(settings, store)
    manual = period.startswith(MANUAL_PREFIX)
    for sub in routing.recipients(segment, period, now, manual=manual):
        loc = settings.locales.resolve(sub.locale)
        counts[loc] = counts.get(loc, 0) + 1
    return counts


def preview_segment(digest: Digest, segment: Segment, locale: str) -> RenderedVariant | None:
    """This period's variant of ``segment`` in ``locale``, or None when nothing is new."""
    now = digest.clock()
    stories = select_stories(digest.settings, digest.store, segment, now)
    if not stories:
        return None
    intros = digest.store.plans.pending(segment.name).intros
    return digest.render_variants(segment, stories, [locale], now, 0, intros)[locale]


def dry_run_segment(
    digest: Digest, segment: Segment, item_ids: Sequence[int] | None = None
) -> SegmentResult:
    """Select and render as a real run would, but store and send nothing."""
    now = digest.clock()
    period = manual_period(now) if item_ids else period_key(segment, now)
    res = SegmentResult(segment.name, period)
    stories = select_stories(digest.settings, digest.store, segment, now, item_ids)
    res.items = len(stories)
    res.recipients = recipient_locales(digest.settings, digest.store, segment, period, now)
    res.skipped = skip_reason(segment, stories)
    if res.skipped:
        return res
    # with nobody in the segment yet, show every locale rather than none
    locales = sorted(res.recipients) or digest.settings.locales.available
    intros = {} if item_ids else digest.store.plans.pending(segment.name).intros
    res.variants = digest.render_variants(segment, stories, locales, now, 0, intros)
    return res


async def send_test(
    digest: Digest, segment: Segment, to: str, item_ids: Sequence[int] | None = None
) -> SegmentResult:
    """Send one message per locale to ``to``; no edition is created, nothing is recorded."""
    res = dry_run_segment(digest, segment, item_ids)
    if res.skipped:
        return res
    composer = Composer(
        digest.settings,
        digest.signer,
        edition_id=0,
        segment=segment.name,
        period=f"test-{res.period}",
        subject_prefix="[TEST] ",
    )
    msgs = [
        composer.compose(v, Recipient(n, 0, to, ""))
        for n, v in enumerate(res.variants.values(), start=1)
    ]
    results = await digest.provider.send_batch(msgs)
    bad = [r for r in results if r.status is not ResultStatus.ACCEPTED]
    if bad:
        raise NewsletterError(f"test send to {to} failed: {bad[0].error}")
    return res


def preview(
    settings: Settings,
    store: Store,
    *,
    segments: list[str] | None = None,
    locales: list[str] | None = None,
    out: Path | None = None,
) -> tuple[Path, list[PageEntry]]:
    """Render this period's selection for each (segment, locale); store and send nothing."""
    folder = out or settings.paths.preview
    digest = Digest(settings, store)
    chosen = [settings.segment(n) for n in segments] if segments else settings.segments
    entries = []
    for segment in chosen:
        for locale in locales or settings.locales.available:
            res = preview_segment(digest, segment, locale)
            if res is None:
                continue
            path = write_variant(settings, res, folder / segment.name / f"{locale}.html")
            entries.append(PageEntry(segment.name, res, path))
    return write_index(folder, "Preview", entries), entries
