"""The editors' overrides of a segment's next edition, and the approval of editions.

A segment has at most one pending plan (``edition_id`` NULL). When the digest creates the
segment's next regular edition it binds the pending plan to it: from then on the plan is
that edition's (its intros are rendered from it) and the segment's next plan starts empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from newsletter.errors import EditionError
from newsletter.models import EditionStatus
from newsletter.store.tables import edition_plans, editions


@dataclass(frozen=True)
class PlanOverrides:
    """Pin, exclusions, order and intros of one edition (story keys, locale -> text)."""

    lead_key: str | None = None
    excluded: tuple[str, ...] = ()
    ordering: tuple[str, ...] = ()
    intros: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether nothing is overridden."""
        return not (self.lead_key or self.excluded or self.ordering or self.intros)


@dataclass(frozen=True)
class ApprovalRow:
    """The approval columns of one edition."""

    edition_id: int
    segment: str
    period: str
    status: EditionStatus
    requested_at: datetime | None
    deadline: datetime | None
    approved_by: str | None
    approved_at: datetime | None


class PlanStore:
    """Queries over ``edition_plans`` and the approval columns of ``editions``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def pending(self, segment: str) -> PlanOverrides:
        """The overrides for ``segment``'s coming edition (empty when none were made)."""
        query = sa.select(edition_plans).where(
            edition_plans.c.segment == segment, edition_plans.c.edition_id.is_(None)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(edition_plans.c.id.desc())).first()
        return PlanOverrides() if row is None else _overrides(row)

    def of_edition(self, edition_id: int) -> PlanOverrides:
        """The overrides an edition was created with (empty when there were none)."""
        query = sa.select(edition_plans).where(edition_plans.c.edition_id == edition_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return PlanOverrides() if row is None else _overrides(row)

    def save(self, segment: str, plan: PlanOverrides, actor: str, now: datetime) -> None:
        """Store ``plan`` as ``segment``'s pending overrides (replacing the earlier ones)."""
        values: dict[str, Any] = {
            "lead_key": plan.lead_key,
            "excluded": list(plan.excluded),
            "ordering": list(plan.ordering),
            "intros": dict(plan.intros),
            "updated_by": actor,
            "updated_at": now,
        }
        pending = sa.and_(edition_plans.c.segment == segment, edition_plans.c.edition_id.is_(None))
        with self.engine.begin() as conn:
            done = conn.execute(edition_plans.update().where(pending).values(**values))
            if not done.rowcount:
                conn.execute(edition_plans.insert().values(segment=segment, **values))

    def bind(self, segment: str, edition_id: int) -> None:
        """Make ``segment``'s pending overrides those of the edition just created."""
        with self.engine.begin() as conn:
            conn.execute(
                edition_plans.update()
                .where(edition_plans.c.segment == segment, edition_plans.c.edition_id.is_(None))
                .values(edition_id=edition_id)
            )

    # -- approval -----------------------------------------------------------------------

    def request_approval(
        self, edition_id: int, requested_at: datetime, deadline: datetime | None
    ) -> None:
        """Record when approval was asked for and when it is due (None: no deadline)."""
        with self.engine.begin() as conn:
            conn.execute(
                editions.update()
                .where(editions.c.id == edition_id)
                .values(approval_requested_at=requested_at, approval_deadline=deadline)
            )

    def approve(self, edition_id: int, actor: str, now: datetime) -> bool:
        """Record the approval of an edition awaiting it; False when it is not awaiting
        approval or was approved already (one conditional UPDATE: one approval wins)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                editions.update()
                .where(
                    editions.c.id == edition_id,
                    editions.c.status == EditionStatus.AWAITING_APPROVAL.value,
                    editions.c.approved_at.is_(None),
                )
                .values(approved_by=actor, approved_at=now)
            )
        return bool(done.rowcount)

    def approval(self, edition_id: int) -> ApprovalRow:
        """The approval columns of edition ``edition_id``."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(editions).where(editions.c.id == edition_id)).first()
        if row is None:
            raise EditionError(f"no edition with id {edition_id}")
        return _approval(row)

    def awaiting(self) -> Sequence[ApprovalRow]:
        """Every edition awaiting approval (approved or not yet), oldest first."""
        query = (
            sa.select(editions)
            .where(editions.c.status == EditionStatus.AWAITING_APPROVAL.value)
            .order_by(editions.c.id)
        )
        with self.engine.connect() as conn:
            return [_approval(row) for row in conn.execute(query)]


def _overrides(row: Any) -> PlanOverrides:
    return PlanOverrides(
        lead_key=row.lead_key,
        excluded=tuple(row.excluded or ()),
        ordering=tuple(row.ordering or ()),
        intros=dict(row.intros or {}),
    )


def _approval(row: Any) -> ApprovalRow:
    return ApprovalRow(
        edition_id=row.id,
        segment=row.segment,
        period=row.period,
        status=EditionStatus(row.status),
        requested_at=row.approval_requested_at,
        deadline=row.approval_deadline,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
    )
