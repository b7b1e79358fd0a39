"""Read-only queries for the public archive: which editions went out, in which languages.

Only what a public page may show is selected (subjects, periods, dates); the heavy HTML of
a variant is read one at a time, when its page is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from newsletter.models import EditionStatus, RenderedVariant
from newsletter.store.editions import variant_from_row
from newsletter.store.tables import edition_items, editions, variants

#: editions whose emails (with their "view in browser" links) went out, at least in part
PUBLISHED = (EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.FINISHED)


@dataclass(frozen=True)
class ArchiveEntry:
    """One published variant, without its body."""

    edition_id: int
    segment: str
    period: str
    locale: str
    subject: str
    preheader: str
    #: when the edition finished sending (or was created, while it is still sending)
    date: datetime


class ArchiveStore:
    """Queries over ``editions`` and ``variants`` for the public archive."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _query(self) -> sa.Select[Any]:
        return (
            sa.select(
                editions.c.id,
                editions.c.segment,
                editions.c.period,
                variants.c.locale,
                variants.c.subject,
                variants.c.preheader,
                editions.c.created_at,
                editions.c.finished_at,
            )
            .join(variants, variants.c.edition_id == editions.c.id)
            .where(editions.c.status.in_([s.value for s in PUBLISHED]))
        )

    @staticmethod
    def _entry(row: Any) -> ArchiveEntry:
        return ArchiveEntry(
            edition_id=row[0],
            segment=row[1],
            period=row[2],
            locale=row[3],
            subject=row[4],
            preheader=row[5],
            date=row[7] or row[6],
        )

    def entries(self, segment: str, locale: str, limit: int = 50) -> list[ArchiveEntry]:
        """Published variants of ``segment`` in ``locale``, newest first."""
        query = (
            self._query()
            .where(editions.c.segment == segment, variants.c.locale == locale)
            .order_by(editions.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [self._entry(row) for row in conn.execute(query)]

    def entry(self, edition_id: int, locale: str) -> ArchiveEntry | None:
        """One published variant, or None if that edition or locale was never published."""
        query = self._query().where(editions.c.id == edition_id, variants.c.locale == locale)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._entry(row)

    def locales(self) -> dict[str, list[str]]:
        """For each segment with a published edition, the locales it was published in."""
        query = (
            sa.select(editions.c.segment, variants.c.locale)
            .join(variants, variants.c.edition_id == editions.c.id)
            .where(editions.c.status.in_([s.value for s in PUBLISHED]))
            .distinct()
            .order_by(editions.c.segment, variants.c.locale)
        )
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for segment, locale in conn.execute(query):
                out.setdefault(segment, []).append(locale)
        return out

    def variant(self, edition_id: int, locale: str) -> RenderedVariant | None:
        """The stored variant of a published edition in ``locale`` (None if unpublished)."""
        query = (
            sa.select(variants)
            .join(editions, editions.c.id == variants.c.edition_id)
            .where(
                variants.c.edition_id == edition_id,
                variants.c.locale == locale,
                editions.c.status.in_([s.value for s in PUBLISHED]),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return variant_from_row(row)

    # -- stories (newsletter.render.storypage) ----------------------------------------------

    def story_published(self, item_id: int, group_key: str) -> bool:
        """Whether a published edition gave the story with ``group_key`` (or the item)."""
        query = (
            sa.select(edition_items.c.item_id)
            .join(editions, editions.c.id == edition_items.c.edition_id)
            .where(
                sa.or_(edition_items.c.group_key == group_key, edition_items.c.item_id == item_id),
                editions.c.status.in_([s.value for s in PUBLISHED]),
            )
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def edition_item_ids(self, edition_ids: Sequence[int]) -> dict[int, list[int]]:
        """The item ids of each published edition in ``edition_ids``, in the edition's order."""
        out: dict[int, list[int]] = {}
        if not edition_ids:
            return out
        query = (
            sa.select(edition_items.c.edition_id, edition_items.c.item_id)
            .join(editions, editions.c.id == edition_items.c.edition_id)
            .where(
                edition_items.c.edition_id.in_(list(edition_ids)),
                editions.c.status.in_([s.value for s in PUBLISHED]),
            )
            .order_by(edition_items.c.edition_id, edition_items.c.position)
        )
        with self.engine.connect() as conn:
            for edition_id, item_id in conn.execute(query):
                out.setdefault(edition_id, []).append(item_id)
        return out
