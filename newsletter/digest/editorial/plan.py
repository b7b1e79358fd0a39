"""The next edition of a segment as the editors arrange it before it is sent.

Overrides (lead pinned, stories excluded or moved, an intro per locale) are stored per
segment for the coming edition (:class:`~newsletter.store.plans.PlanStore`); the digest
applies them when it selects the stories (:func:`~newsletter.digest.stories.select_stories`)
and binds them to the edition it creates. Previews and test sends render exactly as the
email does, through the same :class:`~newsletter.digest.edition.Digest` parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from newsletter.config import Segment, Settings
from newsletter.digest.edition import Digest, SegmentResult
from newsletter.digest.editorial.stories import check_locale
from newsletter.digest.editorial.versions import Coverage, coverage_of
from newsletter.digest.select import Story, apply_plan, period_key, skip_reason
from newsletter.digest.stories import candidate_stories
from newsletter.digest.trial import preview_segment
from newsletter.errors import ConfigError, EditorialError
from newsletter.models import Change, EditionStatus, Item, RenderedVariant, ResultStatus
from newsletter.send.compose import Composer, Recipient
from newsletter.send.providers.base import Provider
from newsletter.store import Store
from newsletter.store.plans import PlanOverrides
from newsletter.textclean import clean_multiline

#: longest intro an editor may write per locale (characters)
MAX_INTRO = 2000


@dataclass(frozen=True)
class PlannedStory:
    """One story of the next edition as the desk lists it."""

    key: str
    #: the story's original
    item: Item
    #: 0-based place in the edition; -1 for an excluded story
    position: int
    #: pinned as the lead (the first story is the lead either way)
    lead: bool
    #: locales with a version (any state)
    locales: tuple[str, ...]


@dataclass(frozen=True)
class EditionPlan:
    """What the segment's next edition would be if it were made now."""

    segment: str
    period: str
    stories: list[PlannedStory]
    excluded: list[PlannedStory]
    lead_key: str | None
    intros: dict[str, str]
    coverage: Coverage
    #: why no edition would be made now ("nothing new", min_items), else None
    skipped: str | None
    #: an edition of this period exists already (it is frozen; this plan is for the next)
    edition_id: int | None
    edition_status: EditionStatus | None


def _segment(settings: Settings, name: str) -> Segment:
    try:
        return settings.segment(name)
    except ConfigError as exc:
        raise EditorialError(str(exc)) from exc


def _arranged(settings: Settings, stories: Sequence[Story], plan: PlanOverrides) -> list[Story]:
    return apply_plan(
        stories,
        lead=plan.lead_key,
        excluded=plan.excluded,
        ordering=plan.ordering,
        limit=len(stories),
    )


def _known(stories: Sequence[Story], key: str, segment: str) -> None:
    if key not in {s.key for s in stories}:
        raise EditorialError(f"story {key!r} is not among the next stories of {segment}")


def _save(
    store: Store,
    segment: str,
    plan: PlanOverrides,
    action: str,
    detail: dict[str, str],
    actor: str,
    now: datetime,
) -> Change:
    store.plans.save(segment, plan, actor, now)
    return Change(actor, action, f"segment:{segment}", now, detail)


def pin_lead(
    settings: Settings,
    store: Store,
    segment: str,
    key: str | None,
    *,
    actor: str,
    now: datetime,
) -> Change:
    """Make story ``key`` the lead of the next edition (None: unpin)."""
    seg = _segment(settings, segment)
    plan = store.plans.pending(seg.name)
    if key is not None:
        _known(candidate_stories(settings, store, seg, now), key, seg.name)
        plan = replace(plan, excluded=tuple(k for k in plan.excluded if k != key))
    plan = replace(plan, lead_key=key)
    return _save(store, seg.name, plan, "plan.lead", {"story": key or ""}, actor, now)


def exclude_story(
    settings: Settings, store: Store, segment: str, key: str, *, actor: str, now: datetime
) -> Change:
    """Leave story ``key`` out of the next edition (it may come in a later one)."""
    seg = _segment(settings, segment)
    _known(candidate_stories(settings, store, seg, now), key, seg.name)
    plan = store.plans.pending(seg.name)
    plan = replace(
        plan,
        excluded=tuple(dict.fromkeys((*plan.excluded, key))),
        lead_key=None if plan.lead_key == key else plan.lead_key,
    )
    return _save(store, seg.name, plan, "plan.exclude", {"story": key}, actor, now)


def include_story(
    settings: Settings, store: Store, segment: str, key: str, *, actor: str, now: datetime
) -> Change:
    """Take an excluded story back into the next edition."""
    seg = _segment(settings, segment)
    plan = store.plans.pending(seg.name)
    if key not in plan.excluded:
        raise EditorialError(f"story {key!r} is not excluded from the next edition of {seg.name}")
    plan = replace(plan, excluded=tuple(k for k in plan.excluded if k != key))
    return _save(store, seg.name, plan, "plan.include", {"story": key}, actor, now)


def move_story(
    settings: Settings,
    store: Store,
    segment: str,
    key: str,
    position: int,
    *,
    actor: str,
    now: datetime,
) -> Change:
    """Move story ``key`` to ``position`` (0-based, clamped) among the next edition's."""
    seg = _segment(settings, segment)
    plan = store.plans.pending(seg.name)
    shown = [s.key for s in _arranged(settings, candidate_stories(settings, store, seg, now), plan)]
    if key not in shown:
        raise EditorialError(f"story {key!r} is not among the next stories of {seg.name}")
    shown.remove(key)
    place = min(max(position, 0), len(shown))
    shown.insert(place, key)
    lead = plan.lead_key
    if lead is not None and shown[0] != lead:
        # the pinned lead was moved down, or another story moved above it: unpinned
        lead = None
    plan = replace(plan, ordering=tuple(shown), lead_key=lead)
    return _save(
        store, seg.name, plan, "plan.move", {"story": key, "position": str(place)}, actor, now
    )


def set_intro(
    settings: Settings,
    store: Store,
    segment: str,
    locale: str,
    text: str,
    *,
    actor: str,
    now: datetime,
) -> Change:
    """Set the next edition's intro paragraph(s) for ``locale`` (plain text; "" removes
    it). A reader gets the first intro along their language chain, as stories fall back."""
    seg = _segment(settings, segment)
    locale = check_locale(settings, locale)
    text = clean_multiline(text).strip()
    if len(text) > MAX_INTRO:
        raise EditorialError(f"the intro is longer than {MAX_INTRO} characters")
    plan = store.plans.pending(seg.name)
    intros = {k: v for k, v in plan.intros.items() if k != locale}
    if text:
        intros[locale] = text
    plan = replace(plan, intros=intros)
    detail = {"locale": locale, "length": str(len(text))}
    return _save(store, seg.name, plan, "plan.intro", detail, actor, now)


def reset_plan(
    settings: Settings, store: Store, segment: str, *, actor: str, now: datetime
) -> Change:
    """Drop every override of the next edition of ``segment``."""
    seg = _segment(settings, segment)
    return _save(store, seg.name, PlanOverrides(), "plan.reset", {}, actor, now)


def next_edition(settings: Settings, store: Store, segment: str, *, now: datetime) -> EditionPlan:
    """The next edition of ``segment`` as it would be made now, with the editors'
    overrides applied, the excluded stories beside it and its translation coverage."""
    seg = _segment(settings, segment)
    plan = store.plans.pending(seg.name)
    candidates = candidate_stories(settings, store, seg, now)
    chosen = apply_plan(
        candidates,
        lead=plan.lead_key,
        excluded=plan.excluded,
        ordering=plan.ordering,
        limit=settings.render.max_items,
    )
    period = period_key(seg, now)
    edition = store.editions.find(seg.name, period)

    def planned(story: Story, position: int) -> PlannedStory:
        locales = tuple(sorted({v.lang for v in story.variants}))
        lead = story.key == plan.lead_key
        return PlannedStory(story.key, story.original, position, lead, locales)

    out = set(plan.excluded)
    return EditionPlan(
        segment=seg.name,
        period=period,
        stories=[planned(s, n) for n, s in enumerate(chosen)],
        excluded=[planned(s, -1) for s in candidates if s.key in out],
        lead_key=plan.lead_key if plan.lead_key in {s.key for s in chosen} else None,
        intros=dict(plan.intros),
        coverage=coverage_of(settings, store, chosen),
        skipped=skip_reason(seg, chosen),
        edition_id=edition.id if edition is not None else None,
        edition_status=edition.status if edition is not None else None,
    )


def _digest(
    settings: Settings, store: Store, now: datetime, provider: Provider | None = None
) -> Digest:
    return Digest(settings, store, provider=provider, clock=lambda: now)


def preview_next(
    settings: Settings, store: Store, segment: str, locale: str, *, now: datetime
) -> RenderedVariant | None:
    """The next edition of ``segment`` in ``locale`` exactly as the email renders (the
    path of ``newsletter preview``); None when nothing would be sent. Nothing is stored
    but machine translations the digest would cache anyway."""
    seg = _segment(settings, segment)
    locale = check_locale(settings, locale)
    digest = _digest(settings, store, now)
    try:
        return preview_segment(digest, seg, locale)
    finally:
        if digest.translator is not None:
            digest.translator.close()


def prepare_edition(
    settings: Settings,
    store: Store,
    segment: str,
    *,
    actor: str,
    now: datetime,
    provider: Provider | None = None,
) -> tuple[Change, int]:
    """Make this period's edition of ``segment`` now, as the scheduled digest would (the
    plan applied, stories frozen, rows planned, variants rendered), and hold it for
    approval whatever the segment's ``approval`` says; the approvers are asked. Returns
    the change and the edition id. Synchronous: call it from a worker thread.

    An edition of this period that exists already is returned when it still awaits
    approval (or was left half-prepared); one sending, sent or cancelled is an error.
    """
    seg = _segment(settings, segment)
    existing = store.editions.find(seg.name, period_key(seg, now))
    waiting = (EditionStatus.PLANNED, EditionStatus.AWAITING_APPROVAL)
    if existing is not None and existing.status not in waiting:
        raise EditorialError(
            f"edition {existing.id} of {seg.name} for {existing.period} is "
            f"{existing.status.label}: one edition per period"
        )
    digest = Digest(settings, store, provider=provider, clock=lambda: now, hold=True)

    async def go() -> SegmentResult:
        try:
            return await digest.run_segment(seg)
        finally:
            await digest.aclose()

    res = asyncio.run(go())
    if res.edition_id is None or not res.awaiting_approval:
        raise EditorialError(f"no edition of {seg.name} made: {res.skipped or 'nothing to do'}")
    detail = {"segment": seg.name, "period": res.period, "stories": str(res.items)}
    return Change(
        actor, "edition.prepare", f"edition:{res.edition_id}", now, detail
    ), res.edition_id


def _one_address(to: str) -> str:
    to = to.strip()
    local, at, domain = to.partition("@")
    if not (local and at and "." in domain) or any(c.isspace() or c in ",;<>" for c in to):
        raise EditorialError(f"not one email address: {to!r}")
    return to


def test_send(
    settings: Settings,
    store: Store,
    segment: str,
    locale: str,
    to: str,
    *,
    actor: str,
    now: datetime,
    provider: Provider | None = None,
) -> Change:
    """Send the next edition of ``segment`` in ``locale`` once to ``to``, marked
    "[TEST] ", through the configured provider (``digest --test-to``'s way); no edition
    is created and nothing is recorded. Synchronous: call it from a worker thread."""
    seg = _segment(settings, segment)
    locale = check_locale(settings, locale)
    address = _one_address(to)
    digest = _digest(settings, store, now, provider)

    async def go() -> None:
        try:
            variant = preview_segment(digest, seg, locale)
            if variant is None:
                raise EditorialError(f"the next edition of {seg.name} has nothing to send")
            composer = Composer(
                settings,
                digest.signer,
                edition_id=0,
                segment=seg.name,
                period=f"test-{period_key(seg, now)}",
                subject_prefix="[TEST] ",
            )
            results = await digest.provider.send_batch(
                [composer.compose(variant, Recipient(1, 0, address, ""))]
            )
            bad = [r for r in results if r.status is not ResultStatus.ACCEPTED]
            if bad:
                raise EditorialError(f"test send to {address} failed: {bad[0].error}")
        finally:
            await digest.aclose()

    asyncio.run(go())
    detail = {"segment": seg.name, "locale": locale, "to": address}
    return Change(actor, "edition.test_send", f"segment:{seg.name}", now, detail)


# not a test, whatever pytest makes of its name when a test module imports it
test_send.__test__ = False  # type: ignore[attr-defined]
