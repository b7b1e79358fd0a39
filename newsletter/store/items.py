"""Stored news items and per-source gather state.

Dedup order on :meth:`ItemStore.upsert`: (source, guid), then link (same language), then
content hash. A match from the same source is the same item, updated in place (its guid
re-keyed if the source changed it); a match from another source is a duplicate story that
the first source owns, so it is left alone.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from newsletter.errors import StoreError
from newsletter.gather.sources.base import SourceState
from newsletter.models import Item
from newsletter.store.tables import items, source_state

UpsertOutcome = Literal["new", "updated", "unchanged"]

# stays under SQLite's and PostgreSQL's bound-parameter limits
_CHUNK = 500


@dataclass(frozen=True)
class ItemRecord:
    """A sanitized item ready to store (what ``gather`` produces).

    ``published_at`` ``None`` means the source gave no date: a new item gets the time it
    was first seen, an existing one keeps the date it has.
    """

    source: str
    guid: str
    title: str
    body_html: str
    summary_html: str
    link: str | None
    published_at: datetime | None
    lang: str
    translation_key: str | None
    tags: tuple[str, ...]
    image: str | None
    content_hash: str


@dataclass(frozen=True)
class SourceStatus:
    """What ``newsletter status`` shows per source.

    ``last_gathered_at`` is the last attempt, ``last_error`` its error (``None`` when it
    succeeded), ``last_count`` the items the last successful attempt returned.
    """

    source: str
    etag: str | None
    last_modified: str | None
    last_gathered_at: datetime | None
    last_error: str | None
    last_count: int | None


class ItemStore:
    """Items and source state in the ``items`` and ``source_state`` tables."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- writing ----------------------------------------------------------------------

    def upsert(self, item: ItemRecord, now: datetime) -> UpsertOutcome:
        """Insert ``item``, or update the stored item it duplicates; says which happened."""
        try:
            with self.engine.begin() as conn:
                return self._upsert(conn, item, now)
        except sa.exc.IntegrityError:
            # another gatherer inserted the same (source, guid) in between: now it matches
            with self.engine.begin() as conn:
                return self._upsert(conn, item, now)

    def _upsert(self, conn: sa.Connection, item: ItemRecord, now: datetime) -> UpsertOutcome:
        row = self._find(conn, item)
        if row is None:
            values = _values(item)
            values["published_at"] = item.published_at or now
            conn.execute(items.insert().values(**values, first_seen_at=now, updated_at=now))
            return "new"
        if row.source != item.source:
            return "unchanged"
        values = _values(item)
        if item.published_at is None:
            del values["published_at"]
        changed = {
            key: value for key, value in values.items() if _differs(key, getattr(row, key), value)
        }
        if not changed:
            return "unchanged"
        conn.execute(items.update().where(items.c.id == row.id).values(**changed, updated_at=now))
        return "updated"

    def _find(self, conn: sa.Connection, item: ItemRecord) -> sa.Row[Any] | None:
        by_guid = conn.execute(
            sa.select(items).where(items.c.source == item.source, items.c.guid == item.guid)
        ).first()
        if by_guid is not None:
            return by_guid
        # prefer the same source's row, so an item whose guid changed is re-keyed
        same_source_first = sa.case((items.c.source == item.source, 0), else_=1)
        if item.link:
            by_link = conn.execute(
                sa.select(items)
                .where(items.c.link == item.link, items.c.lang == item.lang)
                .order_by(same_source_first, items.c.id)
                .limit(1)
            ).first()
            if by_link is not None:
                return by_link
        return conn.execute(
            sa.select(items)
            .where(items.c.content_hash == item.content_hash)
            .order_by(same_source_first, items.c.id)
            .limit(1)
        ).first()

    def store_gathered(
        self,
        source: str,
        records: Sequence[ItemRecord],
        now: datetime,
        *,
        state: SourceState | None,
        count: int | None,
    ) -> builtins.list[UpsertOutcome]:
        """Upsert one source's ``records`` and record its gather, all in one transaction.

        The outcome of each record is the one :meth:`upsert` would give for the records one
        after another, in order (same dedup rules), but the stored rows they may match are
        read with a few set queries and written in batches: no round trip per item.
        ``records`` must hold no two entries sharing a guid, a link (same language) or a
        content hash, as ``gather`` leaves them.
        """
        try:
            with self.engine.begin() as conn:
                outcomes = self._upsert_many(conn, records, now)
                self._record(conn, source, state=state, count=count, error=None, at=now)
                return outcomes
        except sa.exc.IntegrityError:
            # another gatherer inserted the same (source, guid) in between: now it matches
            with self.engine.begin() as conn:
                outcomes = self._upsert_many(conn, records, now)
                self._record(conn, source, state=state, count=count, error=None, at=now)
                return outcomes

    def _upsert_many(
        self, conn: sa.Connection, records: Sequence[ItemRecord], now: datetime
    ) -> builtins.list[UpsertOutcome]:
        candidates = _Candidates(conn, records)
        outcomes: builtins.list[UpsertOutcome] = []
        inserts: builtins.list[dict[str, Any]] = []
        updates: dict[tuple[str, ...], builtins.list[dict[str, Any]]] = {}
        for item in records:
            row = candidates.find(item)
            if row is None:
                values = _values(item)
                values["published_at"] = item.published_at or now
                inserts.append({**values, "first_seen_at": now, "updated_at": now})
                outcomes.append("new")
                continue
            if row["source"] != item.source:
                outcomes.append("unchanged")
                continue
            values = _values(item)
            if item.published_at is None:
                del values["published_at"]
            changed = {
                key: value for key, value in values.items() if _differs(key, row[key], value)
            }
            if not changed:
                outcomes.append("unchanged")
                continue
            candidates.forget(row)  # matched by its new values from now on, as in the database
            row.update(changed)
            candidates.remember(row)
            updates.setdefault(tuple(sorted(changed)), []).append(
                {**{f"v_{k}": v for k, v in changed.items()}, "v_id": row["id"], "v_now": now}
            )
            outcomes.append("updated")
        for columns, params in updates.items():
            statement = (
                items.update()
                .where(items.c.id == sa.bindparam("v_id"))
                .values(
                    {
                        **{c: sa.bindparam(f"v_{c}") for c in columns},
                        "updated_at": sa.bindparam("v_now"),
                    }
                )
            )
            conn.execute(statement, params)
        for start in range(0, len(inserts), _CHUNK):
            conn.execute(items.insert(), inserts[start : start + _CHUNK])
        return outcomes

    def record_gather(
        self,
        source: str,
        *,
        state: SourceState | None,
        count: int | None,
        error: str | None,
        at: datetime,
    ) -> None:
        """Remember one gather attempt; ``None`` state or count keeps the stored values."""
        with self.engine.begin() as conn:
            self._record(conn, source, state=state, count=count, error=error, at=at)

    def _record(
        self,
        conn: sa.Connection,
        source: str,
        *,
        state: SourceState | None,
        count: int | None,
        error: str | None,
        at: datetime,
    ) -> None:
        values: dict[str, Any] = {"last_gathered_at": at, "last_error": error}
        if state is not None:
            values.update(etag=state.etag, last_modified=state.last_modified)
        if count is not None:
            values["last_count"] = count
        updated = conn.execute(
            source_state.update().where(source_state.c.source == source).values(**values)
        )
        if updated.rowcount == 0:
            conn.execute(source_state.insert().values(source=source, **values))

    # -- reading ----------------------------------------------------------------------

    def get(self, id: int) -> Item:
        """The item with ``id``; :class:`StoreError` if there is none."""
        return self.get_many([id])[0]

    def get_many(self, ids: Sequence[int]) -> builtins.list[Item]:
        """The items with ``ids``, in the given order; :class:`StoreError` names missing ids."""
        found: dict[int, Item] = {}
        unique = list(dict.fromkeys(ids))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                for row in conn.execute(sa.select(items).where(items.c.id.in_(chunk))):
                    found[row.id] = _item(row)
        missing = [i for i in unique if i not in found]
        if missing:
            raise StoreError(f"no item with id {', '.join(map(str, missing))}")
        return [found[i] for i in ids]

    def list(
        self,
        *,
        since: datetime | None = None,
        seen_since: datetime | None = None,
        sources: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> builtins.list[Item]:
        """Items newest first by ``published_at``.

        ``since`` keeps items published at or after it, ``seen_since`` items first seen at
        or after it, ``sources`` items from those sources only.
        """
        query = sa.select(items).order_by(items.c.published_at.desc(), items.c.id.desc())
        if since is not None:
            query = query.where(items.c.published_at >= since)
        if seen_since is not None:
            query = query.where(items.c.first_seen_at >= seen_since)
        if sources is not None:
            query = query.where(items.c.source.in_(list(sources)))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_item(row) for row in conn.execute(query)]

    def by_translation_keys(self, keys: Collection[str]) -> dict[str, builtins.list[Item]]:
        """Every stored variant per translation key (keys without items are left out)."""
        out: dict[str, builtins.list[Item]] = {}
        wanted = sorted(set(keys))
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = (
                    sa.select(items)
                    .where(items.c.translation_key.in_(wanted[start : start + _CHUNK]))
                    .order_by(items.c.id)
                )
                for row in conn.execute(query):
                    out.setdefault(row.translation_key, []).append(_item(row))
        return out

    def count(self) -> int:
        """How many items are stored."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one())

    def state(self, source: str) -> SourceState:
        """The conditional-GET validators stored for ``source`` (empty if never gathered)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(source_state.c.etag, source_state.c.last_modified).where(
                    source_state.c.source == source
                )
            ).first()
        if row is None:
            return SourceState()
        return SourceState(etag=row.etag, last_modified=row.last_modified)

    def states_of(self, sources: Collection[str]) -> dict[str, SourceState]:
        """The validators of each of ``sources`` gathered before, in one query per chunk."""
        out: dict[str, SourceState] = {}
        wanted = sorted(set(sources))
        columns = (source_state.c.source, source_state.c.etag, source_state.c.last_modified)
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = sa.select(*columns).where(source_state.c.source.in_(chunk))
                for row in conn.execute(query):
                    out[row.source] = SourceState(etag=row.etag, last_modified=row.last_modified)
        return out

    def states(self) -> builtins.list[SourceStatus]:
        """Gather status of every source ever gathered, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(source_state).order_by(source_state.c.source))
            return [
                SourceStatus(
                    source=row.source,
                    etag=row.etag,
                    last_modified=row.last_modified,
                    last_gathered_at=row.last_gathered_at,
                    last_error=row.last_error,
                    last_count=row.last_count,
                )
                for row in rows
            ]


class _Candidates:
    """The stored rows a batch of records may match, read in set queries and kept current.

    Matching follows :meth:`ItemStore._find`: (source, guid), then link in the same
    language, then content hash; among several rows the same source's comes first, then
    the lowest id.
    """

    def __init__(self, conn: sa.Connection, records: Sequence[ItemRecord]) -> None:
        self._by_guid: dict[tuple[str, str], dict[str, Any]] = {}
        self._by_link: dict[tuple[str, str], builtins.list[dict[str, Any]]] = {}
        self._by_hash: dict[str, builtins.list[dict[str, Any]]] = {}
        rows: dict[int, dict[str, Any]] = {}
        for source in {r.source for r in records}:
            guids = sorted({r.guid for r in records if r.source == source})
            self._load(conn, rows, sa.and_(items.c.source == source), items.c.guid, guids)
        links = sorted({r.link for r in records if r.link})
        self._load(conn, rows, None, items.c.link, links)
        hashes = sorted({r.content_hash for r in records})
        self._load(conn, rows, None, items.c.content_hash, hashes)
        for row in sorted(rows.values(), key=lambda r: r["id"]):
            self.remember(row)

    @staticmethod
    def _load(
        conn: sa.Connection,
        rows: dict[int, dict[str, Any]],
        where: sa.ColumnElement[bool] | None,
        column: sa.Column[Any],
        values: builtins.list[str],
    ) -> None:
        for start in range(0, len(values), _CHUNK):
            query = sa.select(items).where(column.in_(values[start : start + _CHUNK]))
            if where is not None:
                query = query.where(where)
            for row in conn.execute(query):
                rows.setdefault(row.id, dict(row._mapping))

    def remember(self, row: dict[str, Any]) -> None:
        """Index ``row`` under its current guid, link and hash (kept in id order)."""
        self._by_guid[(row["source"], row["guid"])] = row
        if row["link"]:
            _insort(self._by_link.setdefault((row["link"], row["lang"]), []), row)
        _insort(self._by_hash.setdefault(row["content_hash"], []), row)

    def forget(self, row: dict[str, Any]) -> None:
        """Drop ``row`` from the indexes (before it changes)."""
        if self._by_guid.get((row["source"], row["guid"])) is row:
            del self._by_guid[(row["source"], row["guid"])]
        for bucket in (
            self._by_link.get((row["link"], row["lang"]), []),
            self._by_hash.get(row["content_hash"], []),
        ):
            if any(r is row for r in bucket):
                bucket[:] = [r for r in bucket if r is not row]

    def find(self, item: ItemRecord) -> dict[str, Any] | None:
        """The row ``item`` duplicates, as :meth:`ItemStore._find` would pick it."""
        row = self._by_guid.get((item.source, item.guid))
        if row is not None:
            return row
        if item.link:
            found = _first(self._by_link.get((item.link, item.lang), []), item.source)
            if found is not None:
                return found
        return _first(self._by_hash.get(item.content_hash, []), item.source)


def _insort(bucket: builtins.list[dict[str, Any]], row: dict[str, Any]) -> None:
    bucket.append(row)
    bucket.sort(key=lambda r: r["id"])


def _first(bucket: builtins.list[dict[str, Any]], source: str) -> dict[str, Any] | None:
    # the same source's row first, then the lowest id (the query's ORDER BY ... LIMIT 1)
    return min(bucket, key=lambda r: (r["source"] != source, r["id"]), default=None)


def _values(item: ItemRecord) -> dict[str, Any]:
    return {
        "source": item.source,
        "guid": item.guid,
        "link": item.link,
        "title": item.title,
        "summary_html": item.summary_html,
        "body_html": item.body_html,
        "published_at": item.published_at,
        "lang": item.lang,
        "translation_key": item.translation_key,
        "tags": list(item.tags),
        "image": item.image,
        "content_hash": item.content_hash,
    }


def _differs(key: str, stored: Any, new: Any) -> bool:
    if key == "tags":
        return list(stored or []) != list(new)
    return bool(stored != new)


def _item(row: sa.Row[Any]) -> Item:
    return Item(
        id=row.id,
        source=row.source,
        guid=row.guid,
        title=row.title,
        body_html=row.body_html,
        summary_html=row.summary_html,
        link=row.link,
        published_at=row.published_at,
        lang=row.lang,
        translation_key=row.translation_key,
        tags=tuple(row.tags or ()),
        image=row.image,
        content_hash=row.content_hash,
        first_seen_at=row.first_seen_at,
        updated_at=row.updated_at,
    )


#: a stored ``items`` row as an :class:`Item` (for repositories reading the same table)
item_from_row = _item
#: the column values of an :class:`ItemRecord` (for repositories writing the same table)
record_values = _values
