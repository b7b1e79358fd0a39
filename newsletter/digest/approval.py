"""Editions that wait for a person's approval before they are sent.

A segment with ``approval = "required"`` gets its edition prepared as usual (stories
frozen, rows planned, variants rendered), then the edition moves to ``awaiting_approval``
and the segment's ``approvers`` are emailed a link to it in the desk. It is sent once a
person approves it (:func:`approve_edition`, the desk or ``newsletter editions approve``),
or, with ``approve_within``, once that deadline passes (approved by ``"deadline"``), and
only while the segment's send window (the ``window`` of its digest ``[[schedule]]`` job) is
open: an approval outside the window is recorded and the edition is released when the
window opens. :func:`release_due` does that; the worker and the scheduler call it.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid
from zoneinfo import ZoneInfo

from newsletter.config import Segment, Settings
from newsletter.config.schedule import SendWindow
from newsletter.errors import ConfigError, EditionError, EditorialError
from newsletter.models import (
    Change,
    Edition,
    EditionStatus,
    OnProgress,
    OutgoingMessage,
    ResultStatus,
)
from newsletter.send.engine import SendReport
from newsletter.send.providers.base import Provider
from newsletter.store import Store
from newsletter.store.plans import ApprovalRow

log = logging.getLogger("newsletter.digest.approval")

#: who approves an edition whose ``approve_within`` deadline passed
DEADLINE_ACTOR = "deadline"

#: what an edition's period starts with when it was hand-picked (``digest --items``)
_MANUAL_PREFIX = "manual-"


@dataclass(frozen=True)
class Approval:
    """Where the approval of one edition stands."""

    edition_id: int
    segment: str
    period: str
    status: EditionStatus
    requested_at: datetime | None
    deadline: datetime | None
    #: ``"deadline"`` when approved automatically at the deadline
    approved_by: str | None
    approved_at: datetime | None
    #: approved but outside the send window: when it opens (None: sending or not approved)
    starts_at: datetime | None


def approval_required(segment: Segment, edition: Edition, *, hold: bool = False) -> bool:
    """Whether ``edition`` must wait for approval before sending: its segment requires
    it (or ``hold`` asks for it), it was not hand-picked (``digest --items`` is already a
    person's decision), and it is still being prepared or waiting."""
    return (
        (hold or segment.approval == "required")
        and not edition.period.startswith(_MANUAL_PREFIX)
        and edition.status in (EditionStatus.PLANNED, EditionStatus.AWAITING_APPROVAL)
    )


def send_window(settings: Settings, segment: str) -> tuple[SendWindow, ZoneInfo] | None:
    """The send window of ``segment``: that of the first digest job sending it that has
    one (a job without ``segment`` sends every segment); None when it has none."""
    for job in settings.schedule:
        if job.job == "digest" and job.segment in (None, segment) and job.window is not None:
            return job.window, job.tz
    return None


def _opening(settings: Settings, segment: str, now: datetime) -> datetime:
    from newsletter.schedule.triggers import next_opening

    window = send_window(settings, segment)
    return now if window is None else next_opening(window[0], window[1], now)


def desk_link(settings: Settings, edition_id: int) -> str:
    """Where an approver opens the edition in the desk."""
    return f"{settings.web.base_url}/desk/editions/{edition_id}"


async def request_approval(
    settings: Settings,
    store: Store,
    provider: Provider,
    segment: Segment,
    edition: Edition,
    now: datetime,
) -> bool:
    """Move a prepared edition to ``awaiting_approval``, record when approval was asked
    for and its deadline, and email the segment's approvers. False when the edition was
    not ``planned`` (asked already, or paused or cancelled meanwhile).

    A failing approval email is logged, not raised: the edition waits either way, and
    ``newsletter status`` and the desk show it.
    """
    moved = store.editions.transition(
        edition.id,
        EditionStatus.AWAITING_APPROVAL,
        now=now,
        only_from=[EditionStatus.PLANNED],
    )
    if not moved:
        return False
    deadline = now + segment.approve_within if segment.approve_within is not None else None
    store.plans.request_approval(edition.id, now, deadline)
    log.info("edition %s (%s %s) awaits approval", edition.id, segment.name, edition.period)
    if segment.approvers:
        try:
            await _notify(settings, provider, segment, edition, deadline)
        except Exception as exc:  # the edition waits anyway; a bad mailbox must not crash a run
            log.error("edition %s: the approval request email failed: %s", edition.id, exc)
    return True


async def _notify(
    settings: Settings,
    provider: Provider,
    segment: Segment,
    edition: Edition,
    deadline: datetime | None,
) -> None:
    link = desk_link(settings, edition.id)
    org = settings.organisation
    when = ""
    if deadline is not None:
        local = deadline.astimezone(segment.tz)
        when = f"If nobody approves it, it is sent at {local:%Y-%m-%d %H:%M} ({segment.timezone})."
    name = segment.description_for(settings.locales.default)
    subject = f"Approval needed: {name} {edition.period}"
    lines = [
        f"Edition {edition.id} of {segment.name} ({edition.period}) is ready and waits "
        "for your approval.",
        "Preview it and approve it in the desk:",
        link,
    ]
    if when:
        lines.append(when)
    text = "\n\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines[:2])
    body += f'<p><a href="{html.escape(link)}">{html.escape(link)}</a></p>'
    if when:
        body += f"<p>{html.escape(when)}</p>"
    domain = org.from_email.rpartition("@")[2]
    messages = [
        OutgoingMessage(
            delivery_id=n,
            to_email=address,
            to_name="",
            from_email=org.from_email,
            from_name=org.name,
            subject=subject,
            html=f"<!DOCTYPE html><html><body>{body}</body></html>",
            text=text,
            locale=settings.locales.default,
            message_id=make_msgid("approval", domain=domain),
            metadata={"edition_id": str(edition.id), "kind": "approval-request"},
            reply_to=org.reply_to,
        )
        for n, address in enumerate(segment.approvers, start=1)
    ]
    results = await provider.send_batch(messages)
    bad = [r for r in results if r.status is not ResultStatus.ACCEPTED]
    if bad:
        raise EditionError(f"provider refused it: {bad[0].error}")


def _segment(settings: Settings, name: str, edition_id: int) -> Segment:
    try:
        return settings.segment(name)
    except ConfigError as exc:
        raise EditorialError(
            f"edition {edition_id}: segment {name!r} is no longer in the config"
        ) from exc


def _state(settings: Settings, row: ApprovalRow, now: datetime | None) -> Approval:
    starts_at = None
    if (
        now is not None
        and row.status is EditionStatus.AWAITING_APPROVAL
        and row.approved_at is not None
    ):
        starts_at = _opening(settings, row.segment, now)
    return Approval(
        edition_id=row.edition_id,
        segment=row.segment,
        period=row.period,
        status=row.status,
        requested_at=row.requested_at,
        deadline=row.deadline,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        starts_at=starts_at,
    )


def approval_of(
    settings: Settings, store: Store, edition_id: int, *, now: datetime | None = None
) -> Approval:
    """Where the approval of edition ``edition_id`` stands (``starts_at`` needs ``now``)."""
    try:
        row = store.plans.approval(edition_id)
    except EditionError as exc:
        raise EditorialError(str(exc)) from exc
    return _state(settings, row, now)


def awaiting_approval(
    settings: Settings, store: Store, *, now: datetime | None = None
) -> list[Approval]:
    """Every edition awaiting approval (approved ones waiting for their window too),
    oldest first."""
    return [_state(settings, row, now) for row in store.plans.awaiting()]


def _release(settings: Settings, store: Store, edition_id: int, now: datetime) -> bool:
    """Move an approved edition to ``sending`` if its window is open now."""
    row = store.plans.approval(edition_id)
    if _opening(settings, row.segment, now) > now:
        return False
    return store.editions.transition(
        edition_id,
        EditionStatus.SENDING,
        now=now,
        only_from=[EditionStatus.AWAITING_APPROVAL],
    )


def approve_edition(
    settings: Settings, store: Store, edition_id: int, *, actor: str, now: datetime
) -> tuple[Change, Approval]:
    """Approve an edition awaiting approval: record ``actor`` and ``now``, and move it to
    ``sending`` when its segment's send window is open (else it is released when the
    window opens, by :func:`release_due`). Only one approval counts: approving an
    edition not awaiting approval, or approved already, is an :class:`EditorialError`."""
    actor = actor.strip()
    if not actor:
        raise EditorialError("an approval needs the approver's name")
    try:
        row = store.plans.approval(edition_id)
    except EditionError as exc:
        raise EditorialError(str(exc)) from exc
    if row.status is not EditionStatus.AWAITING_APPROVAL:
        raise EditorialError(
            f"edition {edition_id} is {row.status.value.replace('_', ' ')}, not awaiting approval"
        )
    _segment(settings, row.segment, edition_id)
    if not store.plans.approve(edition_id, actor, now):
        done = store.plans.approval(edition_id)
        raise EditorialError(
            f"edition {edition_id} was approved already by {done.approved_by or 'someone'}"
        )
    released = _release(settings, store, edition_id, now)
    state = _state(settings, store.plans.approval(edition_id), now)
    change = Change(
        actor=actor,
        action="edition.approve",
        target=f"edition:{edition_id}",
        at=now,
        detail={
            "segment": row.segment,
            "period": row.period,
            "released": "yes" if released else "no",
        },
    )
    return change, state


def release_due(settings: Settings, store: Store, *, now: datetime) -> list[int]:
    """Release what may be sent now: approved editions whose send window is open, and
    editions past their deadline (approved by ``"deadline"``). Returns their ids."""
    released = []
    for row in store.plans.awaiting():
        if row.approved_at is None:
            if row.deadline is None or row.deadline > now:
                continue
            if not store.plans.approve(row.edition_id, DEADLINE_ACTOR, now):
                continue
            log.info("edition %s: approval deadline passed, approved", row.edition_id)
        if _release(settings, store, row.edition_id, now):
            log.info("edition %s: approved, sending starts", row.edition_id)
            released.append(row.edition_id)
    return released


def send_edition(
    settings: Settings,
    store: Store,
    edition_id: int,
    *,
    provider: Provider | None = None,
    on_progress: OnProgress | None = None,
) -> SendReport:
    """Send an approved (``sending``) edition here, in the foreground, until it is done;
    returns the :class:`~newsletter.send.engine.SendReport`. Workers running elsewhere
    share the rows safely."""
    # the worker imports the digest, which imports this module: import it when used
    from newsletter.send.worker import resume_edition

    if store.editions.status(edition_id) is EditionStatus.AWAITING_APPROVAL:
        raise EditorialError(f"edition {edition_id} is awaiting approval; approve it first")
    return resume_edition(
        settings, edition_id, store=store, provider=provider, on_progress=on_progress
    )
