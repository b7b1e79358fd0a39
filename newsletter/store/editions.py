"""Editions, their frozen item sets and their rendered variants."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from newsletter.errors import DuplicateEditionError, EditionError
from newsletter.models import (
    EDITION_TRANSITIONS,
    DeliveryStatus,
    Edition,
    EditionStatus,
    RenderedVariant,
)
from newsletter.store.tables import UTCDateTime, deliveries, edition_items, editions, variants


class EditionStore:
    """Queries over ``editions``, ``edition_items`` and ``variants``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(
        self, segment: str, period: str, items: Sequence[tuple[int, str]], now: datetime
    ) -> Edition:
        """Create the edition for (segment, period) with ``items`` as (item id, group key).

        The unique key on (segment, period) refuses a second edition, whoever races for it.
        """
        try:
            with self.engine.begin() as conn:
                pk = conn.execute(
                    sa.insert(editions).values(
                        segment=segment,
                        period=period,
                        status=EditionStatus.PLANNED.value,
                        created_at=now,
                    )
                ).inserted_primary_key
                assert pk is not None
                edition_id = int(pk[0])
                if items:
                    conn.execute(
                        sa.insert(edition_items),
                        [
                            {"edition_id": edition_id, "item_id": i, "position": n, "group_key": g}
                            for n, (i, g) in enumerate(items)
                        ],
                    )
        except sa.exc.IntegrityError as exc:
            raise DuplicateEditionError(
                f"an edition for segment {segment!r} and period {period} exists already"
            ) from exc
        return self.get(edition_id)

    def _edition(self, conn: sa.Connection, row: Any) -> Edition:
        ids = conn.execute(
            sa.select(edition_items.c.item_id)
            .where(edition_items.c.edition_id == row.id)
            .order_by(edition_items.c.position)
        ).scalars()
        return Edition(
            id=row.id,
            segment=row.segment,
            period=row.period,
            status=EditionStatus(row.status),
            created_at=row.created_at,
            item_ids=tuple(ids),
        )

    def get(self, edition_id: int) -> Edition:
        """The edition with this id."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(editions).where(editions.c.id == edition_id)).first()
            if row is None:
                raise EditionError(f"no edition with id {edition_id}")
            return self._edition(conn, row)

    def find(self, segment: str, period: str) -> Edition | None:
        """The edition for (segment, period), if one was created."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(editions).where(
                    editions.c.segment == segment, editions.c.period == period
                )
            ).first()
            return None if row is None else self._edition(conn, row)

    def list(self, *, segment: str | None = None, limit: int = 50) -> list[Edition]:
        """Newest editions first."""
        query = sa.select(editions).order_by(editions.c.id.desc()).limit(limit)
        if segment is not None:
            query = query.where(editions.c.segment == segment)
        with self.engine.connect() as conn:
            return [self._edition(conn, row) for row in conn.execute(query).all()]

    def set_status(self, edition_id: int, status: EditionStatus, now: datetime) -> None:
        """Move an edition to ``status`` (``finished`` also stamps the time)."""
        values: dict[str, Any] = {"status": status.value}
        if status is EditionStatus.FINISHED:
            values["finished_at"] = now
        with self.engine.begin() as conn:
            conn.execute(sa.update(editions).where(editions.c.id == edition_id).values(**values))

    def status(self, edition_id: int) -> EditionStatus:
        """The current status of an edition (one cheap query, for polling senders)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(editions.c.status).where(editions.c.id == edition_id)
            ).scalar()
        if value is None:
            raise EditionError(f"no edition with id {edition_id}")
        return EditionStatus(value)

    def transition(
        self,
        edition_id: int,
        status: EditionStatus,
        *,
        now: datetime,
        only_from: Collection[EditionStatus] | None = None,
    ) -> bool:
        """Move to ``status`` from a status :data:`~newsletter.models.EDITION_TRANSITIONS`
        allows (narrowed to ``only_from`` when given); False when it was in another.

        One conditional UPDATE, so an operator's pause or cancel is never overwritten by a
        sender that read the status a moment earlier. Asking for a move the table does not
        have is a programming error (``ValueError``).
        """
        allowed = EDITION_TRANSITIONS[status]
        if only_from is not None:
            if not set(only_from) <= allowed:
                wrong = ", ".join(sorted(set(only_from) - allowed))
                raise ValueError(f"an edition never moves to {status} from {wrong}")
            allowed = frozenset(only_from)
        values: dict[str, Any] = {"status": status.value}
        if status is EditionStatus.FINISHED:
            values["finished_at"] = now
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(editions)
                .where(
                    editions.c.id == edition_id,
                    editions.c.status.in_([s.value for s in allowed]),
                )
                .values(**values)
            )
        return bool(result.rowcount)

    def with_status(self, status: EditionStatus) -> builtins.list[Edition]:
        """Every edition in ``status``, oldest first (workers send them in that order)."""
        query = sa.select(editions).where(editions.c.status == status.value).order_by(editions.c.id)
        with self.engine.connect() as conn:
            return [self._edition(conn, row) for row in conn.execute(query).all()]

    def sent_group_keys(self, segment: str) -> set[str]:
        """Stories already given to ``segment`` by any edition that was not cancelled."""
        query = (
            sa.select(edition_items.c.group_key)
            .join(editions, editions.c.id == edition_items.c.edition_id)
            .where(
                editions.c.segment == segment,
                editions.c.status != EditionStatus.CANCELLED.value,
            )
        )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def readers_in_period(self, period: str) -> dict[int, builtins.list[tuple[str, int]]]:
        """Who has a digest of ``period`` (e.g. 2026-W49): subscriber id -> (segment,
        edition id) of each edition of that period whose row went out or may still go.

        Skipped and failed rows are left out: nobody got those. The caller decides which
        segments count (``overlap = "allow"`` ones do not).
        """
        gone = [DeliveryStatus.SKIPPED.value, DeliveryStatus.FAILED.value]
        query = (
            sa.select(deliveries.c.subscriber_id, editions.c.segment, editions.c.id)
            .join(editions, editions.c.id == deliveries.c.edition_id)
            .where(editions.c.period == period, deliveries.c.status.not_in(gone))
            .order_by(editions.c.id)
        )
        out: dict[int, builtins.list[tuple[str, int]]] = {}
        with self.engine.connect() as conn:
            for sub_id, segment, edition_id in conn.execute(query):
                out.setdefault(sub_id, []).append((segment, edition_id))
        return out

    def last_created(self, segment: str) -> datetime | None:
        """When the newest edition of ``segment`` was created."""
        query = sa.select(sa.func.max(editions.c.created_at)).where(editions.c.segment == segment)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        if value is None:
            return None
        # max() bypasses the column type on SQLite; normalise through the same decorator
        return UTCDateTime().process_result_value(value, self.engine.dialect)

    def save_variant(self, edition_id: int, variant: RenderedVariant) -> None:
        """Store the rendered variant of one locale (replacing an earlier one)."""
        values = {
            "edition_id": edition_id,
            "locale": variant.locale,
            "subject": variant.subject,
            "preheader": variant.preheader,
            "from_name": variant.from_name,
            "html": variant.html,
            "text": variant.text,
            "item_count": variant.item_count,
            "nonce": variant.nonce,
        }
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(variants).where(
                    variants.c.edition_id == edition_id, variants.c.locale == variant.locale
                )
            )
            conn.execute(sa.insert(variants).values(**values))

    def variants(self, edition_id: int) -> dict[str, RenderedVariant]:
        """Every stored variant of an edition, by locale."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(variants).where(variants.c.edition_id == edition_id))
            return {row.locale: variant_from_row(row) for row in rows}


def variant_from_row(row: Any) -> RenderedVariant:
    """A stored ``variants`` row as the :class:`RenderedVariant` it was saved from."""
    return RenderedVariant(
        locale=row.locale,
        subject=row.subject,
        preheader=row.preheader,
        from_name=row.from_name,
        html=row.html,
        text=row.text,
        item_count=row.item_count,
        nonce=row.nonce,
    )
