"""What the editors add to gathered items: desk stories, locale versions, hidden items.

Desk stories and locale versions are ordinary rows of ``items`` (so every reader of items
sees them); the tables here keep what items do not hold: the Markdown as written, how a
version was made and who reviewed it, and which items are kept out of future editions.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from newsletter.errors import EditorialError
from newsletter.models import Item
from newsletter.store.items import ItemRecord, item_from_row, record_values
from newsletter.store.tables import desk_stories, edition_items, hidden_items, item_versions, items

# stays under SQLite's and PostgreSQL's bound-parameter limits
_CHUNK = 500


@dataclass(frozen=True)
class DeskStoryRow:
    """The stored parts of a desk story that its item does not hold."""

    item_id: int
    markdown: str
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class VersionRow:
    """How one locale version (a desk item) of a story was made, and its review."""

    item_id: int
    original_id: int
    locale: str
    source_lang: str
    state: str
    provider: str | None
    original_hash: str
    created_by: str
    created_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None


@dataclass(frozen=True)
class ListedItem:
    """One row of the desk's item list."""

    item: Item
    hidden: bool
    desk: bool
    editions: tuple[int, ...]


class EditorialStore:
    """Queries over ``desk_stories``, ``item_versions`` and ``hidden_items``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- desk stories -------------------------------------------------------------------

    def create_story(self, record: ItemRecord, markdown: str, actor: str, now: datetime) -> int:
        """Insert a desk story's item and its Markdown; returns the new item id."""
        with self.engine.begin() as conn:
            item_id = _insert_item(conn, record, now)
            conn.execute(
                desk_stories.insert().values(
                    item_id=item_id,
                    markdown=markdown,
                    created_by=actor,
                    created_at=now,
                    updated_by=actor,
                    updated_at=now,
                )
            )
        return item_id

    def update_story(
        self, item_id: int, record: ItemRecord, markdown: str, actor: str, now: datetime
    ) -> None:
        """Rewrite a desk story in place (same item id)."""
        values = record_values(record)
        if record.published_at is None:
            del values["published_at"]
        del values["guid"]
        with self.engine.begin() as conn:
            conn.execute(
                items.update().where(items.c.id == item_id).values(**values, updated_at=now)
            )
            conn.execute(
                desk_stories.update()
                .where(desk_stories.c.item_id == item_id)
                .values(markdown=markdown, updated_by=actor, updated_at=now)
            )

    def story(self, item_id: int) -> DeskStoryRow | None:
        """The desk part of item ``item_id``; None when it was not written in the desk."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(desk_stories).where(desk_stories.c.item_id == item_id)
            ).first()
        if row is None:
            return None
        return DeskStoryRow(
            item_id=row.item_id,
            markdown=row.markdown,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )

    # -- locale versions ----------------------------------------------------------------

    def save_version(
        self,
        original: Item,
        locale: str,
        record: ItemRecord,
        *,
        state: str,
        provider: str | None,
        actor: str,
        now: datetime,
    ) -> int:
        """Create or rewrite the ``locale`` version of ``original``; returns its item id.

        A rewrite clears the review (the caller passes the new state) and records the
        original's current content hash, so the version is no longer outdated.
        """
        meta = {
            "state": state,
            "provider": provider,
            "original_hash": original.content_hash,
            "source_lang": original.lang,
            "reviewed_by": None,
            "reviewed_at": None,
        }
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(item_versions.c.item_id).where(
                    item_versions.c.original_id == original.id, item_versions.c.locale == locale
                )
            ).scalar()
            if found is None:
                item_id = _insert_item(conn, record, now)
                conn.execute(
                    item_versions.insert().values(
                        item_id=item_id,
                        original_id=original.id,
                        locale=locale,
                        created_by=actor,
                        created_at=now,
                        **meta,
                    )
                )
                return item_id
            values = record_values(record)
            del values["guid"]
            conn.execute(items.update().where(items.c.id == found).values(**values, updated_at=now))
            conn.execute(
                item_versions.update()
                .where(item_versions.c.item_id == found)
                .values(created_by=actor, created_at=now, **meta)
            )
            return int(found)

    def review(self, item_id: int, state: str, actor: str, now: datetime) -> None:
        """Mark version ``item_id`` reviewed by ``actor`` at ``now``."""
        with self.engine.begin() as conn:
            conn.execute(
                item_versions.update()
                .where(item_versions.c.item_id == item_id)
                .values(state=state, reviewed_by=actor, reviewed_at=now)
            )

    def versions_of(self, original_id: int) -> dict[str, VersionRow]:
        """Every desk version of the story whose original is ``original_id``, by locale."""
        query = sa.select(item_versions).where(item_versions.c.original_id == original_id)
        with self.engine.connect() as conn:
            return {row.locale: _version(row) for row in conn.execute(query)}

    def version_info(self, item_ids: Collection[int]) -> dict[int, VersionRow]:
        """The version rows of those of ``item_ids`` that are desk versions."""
        out: dict[int, VersionRow] = {}
        wanted = sorted(set(item_ids))
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = sa.select(item_versions).where(
                    item_versions.c.item_id.in_(wanted[start : start + _CHUNK])
                )
                out.update({row.item_id: _version(row) for row in conn.execute(query)})
        return out

    # -- hidden items -------------------------------------------------------------------

    def hide(self, item_id: int, actor: str, now: datetime, reason: str) -> bool:
        """Keep ``item_id`` out of future editions; False when it was hidden already."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(hidden_items.c.item_id).where(hidden_items.c.item_id == item_id)
            ).first()
            if exists is not None:
                return False
            conn.execute(
                hidden_items.insert().values(
                    item_id=item_id, hidden_by=actor, hidden_at=now, reason=reason
                )
            )
        return True

    def show(self, item_id: int) -> bool:
        """Let ``item_id`` into future editions again; False when it was not hidden."""
        with self.engine.begin() as conn:
            gone = conn.execute(hidden_items.delete().where(hidden_items.c.item_id == item_id))
        return bool(gone.rowcount)

    def hidden_ids(self) -> set[int]:
        """Every hidden item's id (a short list: editors hide a handful)."""
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(hidden_items.c.item_id)).scalars())

    # -- the desk's item list -----------------------------------------------------------

    def list_items(
        self,
        *,
        source: str | None = None,
        lang: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        edition_id: int | None = None,
        hidden: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[ListedItem]:
        """Items newest first (``since <= published_at < until``), with what the desk
        shows beside each: hidden, written in the desk, the editions that carried it."""
        query = sa.select(items).order_by(items.c.published_at.desc(), items.c.id.desc())
        if source is not None:
            query = query.where(items.c.source == source)
        if lang is not None:
            query = query.where(items.c.lang == lang)
        if since is not None:
            query = query.where(items.c.published_at >= since)
        if until is not None:
            query = query.where(items.c.published_at < until)
        if edition_id is not None:
            carried = sa.select(edition_items.c.item_id).where(
                edition_items.c.edition_id == edition_id
            )
            query = query.where(items.c.id.in_(carried))
        hidden_q = sa.select(hidden_items.c.item_id)
        if hidden is True:
            query = query.where(items.c.id.in_(hidden_q))
        elif hidden is False:
            query = query.where(items.c.id.not_in(hidden_q))
        query = query.limit(max(0, limit)).offset(max(0, offset))
        with self.engine.connect() as conn:
            rows = [item_from_row(row) for row in conn.execute(query)]
            ids = [i.id for i in rows]
            hidden_set = set(
                conn.execute(hidden_q.where(hidden_items.c.item_id.in_(ids))).scalars()
            )
            desk = set(
                conn.execute(
                    sa.select(desk_stories.c.item_id).where(desk_stories.c.item_id.in_(ids))
                ).scalars()
            )
            carried_by: dict[int, builtins.list[int]] = {}
            for item_id, ed in conn.execute(
                sa.select(edition_items.c.item_id, edition_items.c.edition_id)
                .where(edition_items.c.item_id.in_(ids))
                .order_by(edition_items.c.edition_id)
            ):
                carried_by.setdefault(item_id, []).append(ed)
        return [
            ListedItem(
                item=i,
                hidden=i.id in hidden_set,
                desk=i.id in desk,
                editions=tuple(carried_by.get(i.id, ())),
            )
            for i in rows
        ]

    def sources(self) -> builtins.list[str]:
        """The distinct source names of stored items, sorted."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(items.c.source).distinct().order_by(items.c.source)
                ).scalars()
            )


def _insert_item(conn: sa.Connection, record: ItemRecord, now: datetime) -> int:
    values: dict[str, Any] = record_values(record)
    values["published_at"] = record.published_at or now
    try:
        pk = conn.execute(
            items.insert().values(**values, first_seen_at=now, updated_at=now)
        ).inserted_primary_key
    except sa.exc.IntegrityError as exc:
        raise EditorialError(f"cannot store item {record.guid!r}: {exc.orig}") from exc
    assert pk is not None
    return int(pk[0])


def _version(row: Any) -> VersionRow:
    return VersionRow(
        item_id=row.item_id,
        original_id=row.original_id,
        locale=row.locale,
        source_lang=row.source_lang,
        state=row.state,
        provider=row.provider,
        original_hash=row.original_hash,
        created_by=row.created_by,
        created_at=row.created_at,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
    )
