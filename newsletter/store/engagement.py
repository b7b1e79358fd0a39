"""Engagement events per edition: recording a click or open, the report queries, folding.

Every event is one row of ``webhook_events`` (provider events are claimed there anyway, so
keeping one costs no second write; a first-party click or open is one insert). A row names
its edition, locale and delivery (so, through the delivery, its subscriber) and, for a
click, the story by the link's target. Events older than ``[tracking] retention_days`` are
folded into ``engagement_counts`` and deleted: reports add both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.store.tables import (
    deliveries,
    edition_items,
    editions,
    engagement_counts,
    items,
    subscriber_events,
    translations,
)
from newsletter.store.tables import webhook_events as t

__all__ = ["FIRST_PARTY", "Counts", "EditionCounts", "EngagementStore"]

#: ``provider`` of the events our own redirect and pixel record
FIRST_PARTY = "first-party"
#: kinds counted per edition (``request`` rows and unknown kinds are not)
KINDS = (
    "delivered",
    "deferred",
    "soft_bounce",
    "hard_bounce",
    "complaint",
    "unsubscribe",
    "opened",
    "clicked",
)


@dataclass
class Counts:
    """Events of one kind: all of them, and the distinct readers (deliveries) among them."""

    total: int = 0
    readers: int = 0


@dataclass
class EditionCounts:
    """What the store knows about one edition, by locale."""

    edition_id: int
    period: str = ""
    #: locale -> deliveries sent
    sent: dict[str, int] = field(default_factory=dict)
    #: (locale, kind, machine) -> counts
    events: dict[tuple[str, str, bool], Counts] = field(default_factory=dict)
    #: (story target, locale) -> click counts
    clicks: dict[tuple[str, str], Counts] = field(default_factory=dict)


class EngagementStore:
    """Writes and reads engagement rows."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(
        self,
        kind: str,
        *,
        edition_id: int,
        locale: str,
        delivery_id: int | None,
        story: str | None,
        at: datetime,
    ) -> None:
        """One first-party click or open: a single insert, no read before it.

        A delivery id the store does not hold (erased meanwhile) is kept out: the count
        stays, the link to a person does not.
        """
        values: dict[str, Any] = {
            "provider": FIRST_PARTY,
            "event_id": secrets.token_hex(16),
            "kind": kind,
            "occurred_at": at,
            "received_at": at,
            "edition_id": edition_id,
            "locale": locale[:16],
            "story": story[:2000] if story else None,
            "machine": False,
        }
        with self.engine.begin() as conn:
            if delivery_id is None:
                conn.execute(sa.insert(t).values(**values))
                return
            d = deliveries
            # insert ... select: the delivery must be of this edition, else it is dropped
            conn.execute(
                sa.insert(t).from_select(
                    [*values, "delivery_id", "subscriber_id"],
                    sa.select(
                        *(sa.literal(v, t.c[k].type) for k, v in values.items()),
                        d.c.id,
                        d.c.subscriber_id,
                    ).where(d.c.id == delivery_id, d.c.edition_id == edition_id),
                )
            )

    def counts(self, edition_id: int) -> EditionCounts:
        """Sent per locale, events per locale and kind, clicks per story and locale."""
        out = EditionCounts(edition_id)
        d = deliveries
        readers = sa.func.count(sa.distinct(t.c.delivery_id))
        with self.engine.connect() as conn:
            for locale, n in conn.execute(
                sa.select(d.c.locale, sa.func.count())
                .where(d.c.edition_id == edition_id, d.c.status == "sent")
                .group_by(d.c.locale)
            ):
                out.sent[locale] = int(n)
            rows = conn.execute(
                sa.select(t.c.locale, t.c.kind, t.c.machine, sa.func.count(), readers)
                .where(t.c.edition_id == edition_id, t.c.kind.in_(KINDS))
                .group_by(t.c.locale, t.c.kind, t.c.machine)
            )
            for locale, kind, machine, total, n in rows:
                _add(out.events, (locale or "", kind, bool(machine)), total, n)
            rows = conn.execute(
                sa.select(t.c.story, t.c.locale, sa.func.count(), readers)
                .where(t.c.edition_id == edition_id, t.c.kind == "clicked")
                .group_by(t.c.story, t.c.locale)
            )
            for story, locale, total, n in rows:
                _add(out.clicks, (story or "", locale or ""), total, n)
            # unsubscribes through our own link name the edition they came from
            se = subscriber_events
            rows = conn.execute(
                sa.select(d.c.locale, sa.func.count(), sa.func.count(sa.distinct(d.c.id)))
                .select_from(se)
                .join(
                    d,
                    sa.and_(d.c.subscriber_id == se.c.subscriber_id, d.c.edition_id == edition_id),
                )
                .where(
                    se.c.kind == "unsubscribed",
                    se.c.detail["edition_id"].as_integer() == edition_id,
                )
                .group_by(d.c.locale)
            )
            for locale, total, n in rows:
                _add(out.events, (locale, "unsubscribe", False), total, n)
            c = engagement_counts
            for row in conn.execute(sa.select(c).where(c.c.edition_id == edition_id)):
                _add(out.events, (row.locale, row.kind, row.machine), row.total, row.readers)
                if row.kind == "clicked":
                    _add(out.clicks, (row.story, row.locale), row.total, row.readers)
        return out

    def stories(self, edition_id: int) -> list[dict[str, Any]]:
        """The edition's items in order: id, title, link, language, story key, and the
        languages it was machine-translated into."""
        ei, it, tr = edition_items, items, translations
        with self.engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(it.c.id, it.c.title, it.c.link, it.c.lang, ei.c.group_key)
                    .join(ei, ei.c.item_id == it.c.id)
                    .where(ei.c.edition_id == edition_id)
                    .order_by(ei.c.position)
                )
            ]
            ids = [r["id"] for r in rows]
            langs: dict[int, set[str]] = {}
            if ids:
                for item_id, lang in conn.execute(
                    sa.select(tr.c.item_id, tr.c.target_lang).where(tr.c.item_id.in_(ids))
                ):
                    langs.setdefault(int(item_id), set()).add(str(lang))
        for r in rows:
            r["translated"] = sorted(langs.get(r["id"], set()))
        return rows

    def trend(self, segment: str, last: int) -> list[EditionCounts]:
        """The counts of the segment's ``last`` editions that were sent, oldest first, summed
        over locales (``sent`` and ``events`` keyed by locale ``""``; no clicks per story)."""
        e = editions
        with self.engine.connect() as conn:
            found = [
                (int(i), str(p))
                for i, p in conn.execute(
                    sa.select(e.c.id, e.c.period)
                    .where(
                        e.c.segment == segment, e.c.status.in_(["finished", "sending", "paused"])
                    )
                    .order_by(e.c.id.desc())
                    .limit(last)
                )
            ]
        # one grouped pass per table for every edition (not one report per edition):
        # the covering index (edition_id, kind, machine, delivery_id) answers it alone
        by_id = {i: EditionCounts(i, period=p) for i, p in reversed(found)}
        ids = list(by_id)
        if not ids:
            return []
        d, se, c = deliveries, subscriber_events, engagement_counts
        readers = sa.func.count(sa.distinct(t.c.delivery_id))
        with self.engine.connect() as conn:
            for edition_id, n in conn.execute(
                sa.select(d.c.edition_id, sa.func.count())
                .where(d.c.edition_id.in_(ids), d.c.status == "sent")
                .group_by(d.c.edition_id)
            ):
                by_id[edition_id].sent[""] = int(n)
            for edition_id, kind, machine, total, n in conn.execute(
                sa.select(t.c.edition_id, t.c.kind, t.c.machine, sa.func.count(), readers)
                .where(t.c.edition_id.in_(ids), t.c.kind.in_(KINDS))
                .group_by(t.c.edition_id, t.c.kind, t.c.machine)
            ):
                _add(by_id[edition_id].events, ("", kind, bool(machine)), total, n)
            from_edition = se.c.detail["edition_id"].as_integer()
            for edition_id, n in conn.execute(
                sa.select(from_edition, sa.func.count())
                .where(se.c.kind == "unsubscribed", from_edition.in_(ids))
                .group_by(from_edition)
            ):
                _add(by_id[int(edition_id)].events, ("", "unsubscribe", False), n, n)
            for row in conn.execute(sa.select(c).where(c.c.edition_id.in_(ids))):
                key = ("", row.kind, row.machine)
                _add(by_id[row.edition_id].events, key, row.total, row.readers)
        return list(by_id.values())

    def for_deliveries(self, delivery_ids: list[int]) -> list[dict[str, Any]]:
        """Engagement rows of these deliveries (one person's, for a data export)."""
        if not delivery_ids:
            return []
        query = (
            sa.select(t.c.provider, t.c.kind, t.c.edition_id, t.c.locale, t.c.story)
            .add_columns(t.c.machine, t.c.occurred_at)
            .where(t.c.delivery_id.in_(delivery_ids))
            .order_by(t.c.occurred_at, t.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def fold(self, before: datetime) -> int:
        """Fold engagement rows that occurred before ``before`` into counts; delete them.

        One transaction, so a crash neither loses nor double-counts. Returns rows folded.
        """
        c = engagement_counts
        old = sa.and_(t.c.edition_id.is_not(None), t.c.occurred_at < before)
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(
                    t.c.edition_id,
                    t.c.locale,
                    t.c.story,
                    t.c.kind,
                    t.c.machine,
                    sa.func.count(),
                    sa.func.count(sa.distinct(t.c.delivery_id)),
                )
                .where(old, t.c.kind.in_(KINDS))
                .group_by(t.c.edition_id, t.c.locale, t.c.story, t.c.kind, t.c.machine)
            ).all()
            insert = (
                postgresql.insert(c)
                if self.engine.dialect.name == "postgresql"
                else sqlite.insert(c)
            )
            for edition_id, locale, story, kind, machine, total, n in rows:
                stmt = insert.values(
                    edition_id=edition_id,
                    locale=locale or "",
                    story=story or "",
                    kind=kind,
                    machine=bool(machine),
                    total=total,
                    readers=n,
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["edition_id", "locale", "story", "kind", "machine"],
                        set_={
                            "total": c.c.total + stmt.excluded.total,
                            "readers": c.c.readers + stmt.excluded.readers,
                        },
                    )
                )
            # the rows go, but their dedup ids stay until [webhooks] retention prunes them
            gone = conn.execute(sa.delete(t).where(old, t.c.provider == FIRST_PARTY)).rowcount
            kept = conn.execute(
                sa.update(t)
                .where(old)
                .values(edition_id=None, delivery_id=None, locale=None, story=None)
            ).rowcount
        return int(gone) + int(kept)


def _add(target: dict[Any, Counts], key: Any, total: int, readers: int) -> None:
    found = target.setdefault(key, Counts())
    found.total += int(total)
    found.readers += int(readers)
