"""A real digest run: this period's edition of each segment, created (or resumed) and sent.

Per segment: select the stories, create the edition, plan one delivery row per recipient,
render each locale's variant once, send. Each stage lives in its own module (what goes
into an edition: :mod:`newsletter.digest.stories`). Running twice in a period does not send
twice: the edition is keyed by (segment, period) in the store, and an unfinished edition
is resumed from its rows.

A ``stop`` event (a ``threading.Event``, set from another thread, e.g. the scheduler's on
SIGTERM) ends a run early without losing anything: no new batch starts once it is set,
batches already handed to the provider are recorded, a wait for retries ends, and
segments not yet started are left for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from newsletter.audience.explain import Explanation
from newsletter.audience.segments import Routing
from newsletter.audience.subscribers import ImportReport
from newsletter.clock import utcnow
from newsletter.config import Segment, Settings
from newsletter.digest.approval import approval_required, request_approval
from newsletter.digest.select import Story, entries_for, period_key, period_label, skip_reason
from newsletter.digest.stories import MANUAL_PREFIX, manual_period, select_stories, stories_of
from newsletter.digest.translate import build_translator, translate_missing
from newsletter.digest.translate.base import Translator
from newsletter.errors import ConfigError, DuplicateEditionError, EditionError
from newsletter.gather.run import GatherReport
from newsletter.models import Edition, EditionStatus, OnProgress, RenderedVariant
from newsletter.render.preview import write_variant_pages
from newsletter.render.renderer import Renderer
from newsletter.send.compose import view_url
from newsletter.send.engine import Sender, SendReport
from newsletter.send.providers import build_provider
from newsletter.send.providers.base import Provider
from newsletter.send.tokens import TokenSigner, signer_for
from newsletter.store import Store

log = logging.getLogger("newsletter.digest")

#: how often a running send looks at the thread-side stop event, in seconds
STOP_POLL = 0.2


@dataclass
class SegmentResult:
    """What happened to one segment in one run."""

    segment: str
    period: str
    edition_id: int | None = None
    items: int = 0
    recipients: dict[str, int] = field(default_factory=dict)
    variants: dict[str, RenderedVariant] = field(default_factory=dict)
    skipped: str | None = None
    sent: SendReport | None = None
    resumed: bool = False
    #: a stop ended the run before this segment was done; the next run continues it
    stopped: bool = False
    #: prepared and waiting for a person's approval (segments with approval = "required")
    awaiting_approval: bool = False


@dataclass
class DigestReport:
    """What one ``digest`` run did."""

    gathered: GatherReport | None
    segments: list[SegmentResult]
    outbox: Path | None = None
    lists: dict[str, ImportReport] = field(default_factory=dict)
    #: dry runs: who matched more than one segment and where they went
    overlaps: Explanation | None = None


def pick_intro(intros: Mapping[str, str], chain: Sequence[str]) -> tuple[str, str] | None:
    """The first intro along ``chain`` as (locale, text), or None when none is set."""
    for lang in chain:
        text = intros.get(lang, "").strip()
        if text:
            return lang, text
    return None


@contextlib.asynccontextmanager
async def watching(stop: threading.Event | None) -> AsyncIterator[asyncio.Event | None]:
    """An asyncio event set (within :data:`STOP_POLL` s) once the thread-side ``stop`` is.

    ``threading.Event`` has no callback to hook, and setting an asyncio event from another
    thread is unsafe, so a task on this loop looks at it; it ends with the block.
    """
    if stop is None:
        yield None
        return
    seen = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            await asyncio.sleep(STOP_POLL)
        log.info("stop requested: no new batch is started")
        seen.set()

    if stop.is_set():
        seen.set()
    task = asyncio.create_task(watch())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Digest:
    """Runs the pipeline for the configured segments with injected parts.

    ``stop``, set from another thread, ends a send after the batches in flight are
    recorded and keeps segments not yet started from starting (module docstring). Trial
    runs that store nothing (dry run, test send, preview) use the same parts:
    :mod:`newsletter.digest.trial`.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        provider: Provider | None = None,
        renderer: Renderer | None = None,
        signer: TokenSigner | None = None,
        translator: Translator | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_progress: OnProgress | None = None,
        stop: threading.Event | None = None,
        hold: bool = False,
    ) -> None:
        self.settings = settings
        #: hold every new edition for approval, whatever its segment says (the desk's
        #: "prepare for approval")
        self.hold = hold
        self.store = store
        self.renderer = renderer or Renderer(settings)
        self._provider = provider
        #: the keys of every link; the sender pins their timestamp per edition
        self.signer = signer or signer_for(settings)
        self.clock = clock
        self.on_progress = on_progress
        self.stop = stop
        # None when machine translation is off; a missing API key fails here, at start
        self.translator = translator or build_translator(settings)
        self._own_translator = translator is None
        self._own_provider = provider is None

    def chosen(self, names: Sequence[str] | None) -> list[Segment]:
        """The named segments (every configured one when ``names`` is empty)."""
        chosen = [self.settings.segment(n) for n in names] if names else self.settings.segments
        if not chosen:
            raise EditionError("no segments configured: add [[segments]] to config.toml")
        return chosen

    def with_translations(self, stories: Sequence[Story], locale: str) -> list[Story]:
        """``stories`` plus machine translations into ``locale`` where only the original fits.

        A human variant anywhere in the reader's chain wins over a machine translation;
        a failing translator changes nothing (the fallback chain applies).
        """
        chain = self.settings.locales.chain(locale)
        need = [s for s in stories if not any(s.in_lang(lang) for lang in chain)]
        if not need or self.translator is None:
            return list(stories)
        done = translate_missing(
            need, [locale], self.translator, self.store.translations, self.clock()
        )
        by_key = {s.key: s for s in done}
        return [by_key.get(s.key, s) for s in stories]

    def render_variants(
        self,
        segment: Segment,
        stories: Sequence[Story],
        locales: Sequence[str],
        now: datetime,
        edition_id: int,
        intros: Mapping[str, str] | None = None,
    ) -> dict[str, RenderedVariant]:
        """Render and inline each locale's variant once.

        ``intros`` are the editors' intro paragraphs by locale; a reader gets the first
        one along their language chain, then the default locale's (as stories fall back).
        """
        out = {}
        for locale in locales:
            shown = self.with_translations(stories, locale)
            chain = self.settings.locales.chain(locale)
            out[locale] = self.renderer.render(
                segment=segment,
                period_label=period_label(segment, now, locale),
                edition_date=now.astimezone(segment.tz).date(),
                entries=entries_for(shown, chain),
                locale=locale,
                view_url=view_url(self.settings, edition_id, locale),
                intro=pick_intro(intros or {}, [*chain, self.settings.locales.default]),
            )
        return out

    @property
    def provider(self) -> Provider:
        """The injected provider, or the configured one built on first use."""
        if self._provider is None:
            self._provider = build_provider(self.settings)
        return self._provider

    async def run_segment(
        self, segment: Segment, item_ids: Sequence[int] | None = None
    ) -> SegmentResult:
        """Create (or resume) this period's edition of ``segment`` and send it."""
        now = self.clock()
        period = period_key(segment, now)
        if item_ids:
            period = manual_period(now)
        res = SegmentResult(segment.name, period)
        edition = self.store.editions.find(segment.name, period)
        if edition is not None and edition.status is EditionStatus.FINISHED:
            res.edition_id = edition.id
            res.skipped = f"already sent as edition {edition.id}"
            return res
        if edition is not None and edition.status is EditionStatus.CANCELLED:
            res.edition_id = edition.id
            res.skipped = f"edition {edition.id} was cancelled"
            return res
        if edition is None:
            plan = None if item_ids else self.store.plans.pending(segment.name)
            stories = select_stories(self.settings, self.store, segment, now, item_ids, plan=plan)
            res.items = len(stories)
            res.skipped = skip_reason(segment, stories)
            if res.skipped:
                return res
            try:
                edition = self.store.editions.create(
                    segment.name, period, [(s.original.id, s.key) for s in stories], now
                )
            except DuplicateEditionError as exc:
                res.skipped = str(exc)
                return res
            if plan is not None:
                # the editors' overrides are this edition's now; the next one starts clean
                self.store.plans.bind(segment.name, edition.id)
        else:
            res.resumed = True
            stories = self.stories_of(edition)
            res.items = len(stories)
        res.edition_id = edition.id
        if approval_required(segment, edition, hold=self.hold):
            return await self._await_approval(segment, edition, stories, res, now)
        return await self._deliver(segment, edition, stories, res, now)

    async def _await_approval(
        self,
        segment: Segment,
        edition: Edition,
        stories: list[Story],
        res: SegmentResult,
        now: datetime,
    ) -> SegmentResult:
        """Prepare an edition of a segment that needs approval, and ask for it (once)."""
        res.awaiting_approval = True
        res.skipped = f"edition {edition.id} is awaiting approval"
        if edition.status is EditionStatus.PLANNED:
            res.recipients, res.variants = self.prepare(segment, edition, stories, now)
            await request_approval(self.settings, self.store, self.provider, segment, edition, now)
        return res

    def prepare(
        self, segment: Segment, edition: Edition, stories: list[Story], now: datetime
    ) -> tuple[dict[str, int], dict[str, RenderedVariant]]:
        """Finish planning ``edition``: its rows (when still planned) and every locale's
        variant not rendered yet. Returns (recipients per locale, variants).

        Idempotent: a crash half-way through planning is completed here.
        """
        if edition.status is EditionStatus.PLANNED:
            # who is planned follows "one digest per person per period"
            # (newsletter.audience.segments)
            routing = Routing(self.settings, self.store)
            manual = edition.period.startswith(MANUAL_PREFIX)
            rows = (
                (sub.id, self.settings.locales.resolve(sub.locale))
                for sub in routing.recipients(segment, edition.period, now, manual=manual)
            )
            self.store.deliveries.plan(edition.id, rows, now)
        by_locale = self.store.deliveries.counts_by_locale(edition.id)
        per_locale = {loc: sum(c.values()) for loc, c in sorted(by_locale.items())}
        variants = self.store.editions.variants(edition.id)
        missing = [loc for loc in per_locale if loc not in variants]
        if missing:
            intros = self.store.plans.of_edition(edition.id).intros
            fresh = self.render_variants(
                segment, stories, missing, edition.created_at, edition.id, intros
            )
            for variant in fresh.values():
                self.store.editions.save_variant(edition.id, variant)
            variants.update(fresh)
        return per_locale, variants

    async def _deliver(
        self,
        segment: Segment,
        edition: Edition,
        stories: list[Story],
        res: SegmentResult,
        now: datetime,
    ) -> SegmentResult:
        res.recipients, res.variants = self.prepare(segment, edition, stories, now)
        variants = res.variants
        if edition.status is EditionStatus.PAUSED:
            res.skipped = f"edition {edition.id} is paused"
            return res
        # the keys were loaded once for the whole run; the sender pins them per edition
        sender = Sender.configured(
            self.settings, self.store, self.provider, self.signer, clock=self.clock
        )

        async with watching(self.stop) as stop:
            res.sent = await sender.send(
                self.store.editions.get(edition.id),
                variants=variants,
                on_progress=self.on_progress,
                stop=stop,
            )
        # stopped just as the last batch was recorded: nothing is left to continue
        res.stopped = res.sent.stopped and not res.sent.finished
        return res

    async def run(
        self, segments: Sequence[str] | None = None, *, item_ids: Sequence[int] | None = None
    ) -> list[SegmentResult]:
        """Run every named segment (all configured ones when ``segments`` is empty)."""
        results = []
        for segment in self.chosen(segments):
            if self.stop is not None and self.stop.is_set():
                period = period_key(segment, self.clock())
                skipped = "not started: stopping"
                results.append(SegmentResult(segment.name, period, skipped=skipped, stopped=True))
            else:
                results.append(await self.run_segment(segment, item_ids))
        return results

    def stories_of(self, edition: Edition) -> list[Story]:
        """The stories an existing edition was created with."""
        items = self.store.items.get_many(edition.item_ids)
        return stories_of(self.store, items, self.settings.locales.default)

    def write_outbox_index(self) -> Path | None:
        """Every edition's variants as HTML beside the messages of a provider that writes
        them on this machine (the outbox); None for the others."""
        folder = self._provider.local_folder() if self._provider is not None else None
        if folder is None:
            return None
        return write_variant_pages(self.settings, self.store, folder)

    async def aclose(self) -> None:
        """Close what this object built (an injected provider or translator is the caller's)."""
        if self._own_translator and self.translator is not None:
            self.translator.close()
        if self._own_provider and self._provider is not None:
            await self._provider.aclose()


def finish_planning(settings: Settings, store: Store, edition_id: int, now: datetime) -> None:
    """Plan the rows and render the variants of an edition whose planning did not finish
    (a ``digest`` that crashed or was stopped while planning), as ``digest`` would."""
    edition = store.editions.get(edition_id)
    try:
        segment = settings.segment(edition.segment)
    except ConfigError as exc:
        raise EditionError(
            f"edition {edition_id} cannot be planned: segment {edition.segment!r} is no "
            "longer in the config; cancel it with `newsletter editions cancel "
            f"{edition_id}`"
        ) from exc
    digest = Digest(settings, store, provider=None)
    try:
        digest.prepare(segment, edition, digest.stories_of(edition), now)
    finally:
        if digest.translator is not None:
            digest.translator.close()
