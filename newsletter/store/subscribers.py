"""Subscriber records: add, import-merge, stream, change status."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from newsletter.errors import SubscriberError
from newsletter.models import NewSubscriber, Subscriber, SubscriberStatus
from newsletter.store.suppressions import email_hash
from newsletter.store.tables import (
    consents,
    deliveries,
    subscriber_events,
    suppressions,
    webhook_events,
)
from newsletter.store.tables import subscribers as t

MergeOutcome = Literal["added", "updated", "unchanged", "suppressed"]
#: what sending needs of a subscriber: email, name, and why not to send now (or None)
Addressee = tuple[str, str, str | None]

# rows per statement: under SQLite's and PostgreSQL's bound-parameter limits
_CHUNK = 500
# rows per executemany call
_BATCH = 5000


def _row(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        name=row.name,
        locale=row.locale,
        organisation=row.organisation,
        country=row.country,
        lists=tuple(row.lists),
        tags=tuple(row.tags),
        status=SubscriberStatus(row.status),
        consent_at=row.consent_at,
        consent_source=row.consent_source,
        paused_until=row.paused_until,
    )


def _suppressed(conn: sa.Connection, email: str) -> bool:
    query = sa.select(suppressions.c.email_hash).where(
        suppressions.c.email_hash == email_hash(email)
    )
    return conn.execute(query).first() is not None


def _changes(row: Any, new: NewSubscriber) -> dict[str, Any]:
    """What merging ``new`` into the stored ``row`` changes: lists and tags added, empty
    fields filled; never the status."""
    changes: dict[str, Any] = {}
    lists = sorted(set(row.lists) | set(new.lists))
    tags = sorted(set(row.tags) | set(new.tags))
    if lists != sorted(row.lists):
        changes["lists"] = lists
    if tags != sorted(row.tags):
        changes["tags"] = tags
    for field in ("name", "locale", "organisation", "country", "consent_source"):
        if not getattr(row, field) and getattr(new, field):
            changes[field] = getattr(new, field)
    if row.consent_at is None and new.consent_at is not None:
        changes["consent_at"] = new.consent_at
    return changes


def _insert_many(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys) into ``subscribers`` in bulk.

    PostgreSQL gets one ``COPY``, each value passed through its column's own bind
    processing first, so what is stored is what an INSERT would store; SQLite gets
    executemany, which its driver runs in C.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        for start in range(0, len(rows), _BATCH):
            conn.execute(sa.insert(t), rows[start : start + _BATCH])
        return
    names = list(rows[0])
    processors = [t.c[name].type._cached_bind_processor(conn.dialect) for name in names]
    columns = ", ".join(conn.dialect.identifier_preparer.quote(name) for name in names)
    table = conn.dialect.identifier_preparer.format_table(t)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    value if proc is None or value is None else proc(value)
                    for proc, value in zip(processors, (row[n] for n in names), strict=True)
                ]
            )


class SubscriberStore:
    """Queries over the ``subscribers`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(
        self, new: NewSubscriber, now: datetime, *, allow_suppressed: bool = False
    ) -> Subscriber:
        """Insert a subscriber; an address already stored or suppressed is refused.

        ``allow_suppressed`` is for a pending sign-up only: the person asked for it
        themselves, and the suppression is lifted only when they confirm.
        """
        with self.engine.begin() as conn:
            if conn.execute(sa.select(t.c.id).where(t.c.email == new.email)).first():
                raise SubscriberError(f"{new.email} is already a subscriber")
            if not allow_suppressed and _suppressed(conn, new.email):
                raise SubscriberError(f"{new.email} is on the suppression list")
            new_id = conn.execute(
                sa.insert(t).values(**self._values(new, now))
            ).inserted_primary_key
        assert new_id is not None
        return self.get(int(new_id[0]))

    @staticmethod
    def _values(new: NewSubscriber, now: datetime) -> dict[str, Any]:
        return {
            "email": new.email,
            "name": new.name,
            "locale": new.locale,
            "organisation": new.organisation,
            "country": new.country,
            "lists": sorted(set(new.lists)),
            "tags": sorted(set(new.tags)),
            "status": new.status.value,
            "consent_at": new.consent_at,
            "consent_source": new.consent_source,
            "created_at": now,
            "updated_at": now,
        }

    def merge(self, new: NewSubscriber, now: datetime) -> MergeOutcome:
        """Add ``new``, or merge it into the stored subscriber with the same address.

        A merge only adds lists and tags and fills empty fields: it never changes a status
        (an unsubscribed person stays unsubscribed whatever a later import says). An address
        on the suppression list (erased, bounced, complained) is not added again.
        """
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.email == new.email)).first()
            if row is None:
                if _suppressed(conn, new.email):
                    return "suppressed"
                conn.execute(sa.insert(t).values(**self._values(new, now)))
                return "added"
            changes = _changes(row, new)
            if not changes:
                return "unchanged"
            conn.execute(sa.update(t).where(t.c.id == row.id).values(**changes, updated_at=now))
            return "updated"

    def merge_many(self, news: Sequence[NewSubscriber], now: datetime) -> list[MergeOutcome]:
        """:meth:`merge` for many subscribers at once, in one transaction; outcomes in order.

        The rules are exactly :meth:`merge`'s; the stored rows and suppressions are read
        with set queries and the changes written in batches. Addresses must be distinct
        (an import reports repeats as errors before they get here).
        """
        emails = [new.email for new in news]
        if len(set(emails)) != len(emails):
            raise ValueError("merge_many needs distinct addresses")
        outcomes: list[MergeOutcome] = []
        inserts: list[dict[str, Any]] = []
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        with self.engine.begin() as conn:
            stored: dict[str, Any] = {}
            for start in range(0, len(emails), _CHUNK):
                chunk = emails[start : start + _CHUNK]
                for found in conn.execute(sa.select(t).where(t.c.email.in_(chunk))):
                    stored[found.email] = found
            hashes = {email: email_hash(email) for email in emails if email not in stored}
            suppressed: set[str] = set()
            wanted = sorted(set(hashes.values()))
            for start in range(0, len(wanted), _CHUNK):
                query = sa.select(suppressions.c.email_hash).where(
                    suppressions.c.email_hash.in_(wanted[start : start + _CHUNK])
                )
                suppressed.update(conn.execute(query).scalars())
            for new in news:
                row = stored.get(new.email)
                if row is None:
                    if hashes[new.email] in suppressed:
                        outcomes.append("suppressed")
                    else:
                        inserts.append(self._values(new, now))
                        outcomes.append("added")
                    continue
                changes = _changes(row, new)
                if not changes:
                    outcomes.append("unchanged")
                    continue
                params = {f"v_{k}": v for k, v in changes.items()}
                updates.setdefault(tuple(sorted(changes)), []).append(
                    {**params, "v_id": row.id, "v_now": now}
                )
                outcomes.append("updated")
            _insert_many(conn, inserts)
            for columns, rows in updates.items():
                statement = (
                    sa.update(t)
                    .where(t.c.id == sa.bindparam("v_id"))
                    .values(
                        {
                            **{c: sa.bindparam(f"v_{c}") for c in columns},
                            "updated_at": sa.bindparam("v_now"),
                        }
                    )
                )
                for start in range(0, len(rows), _CHUNK):
                    conn.execute(statement, rows[start : start + _CHUNK])
        return outcomes

    def get(self, subscriber_id: int) -> Subscriber:
        """The subscriber with this id."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == subscriber_id)).first()
        if row is None:
            raise SubscriberError(f"no subscriber with id {subscriber_id}")
        return _row(row)

    def get_many(self, ids: Sequence[int]) -> dict[int, Subscriber]:
        """Subscribers by id (missing ids are absent from the result)."""
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.id.in_(list(ids)))).all()
        return {row.id: _row(row) for row in rows}

    def addressees(
        self, ids: Sequence[int], now: datetime
    ) -> dict[int, tuple[str, str, str | None]]:
        """What sending needs of these subscribers: id -> (email, name, why not to send
        now or None). Five columns instead of whole rows: this runs once per batch."""
        if not ids:
            return {}
        cols = (t.c.id, t.c.email, t.c.name, t.c.status, t.c.paused_until)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*cols).where(t.c.id.in_(list(ids)))).all()
        active = SubscriberStatus.ACTIVE.value
        out: dict[int, Addressee] = {}
        for sid, email, name, status, paused_until in rows:
            why = None
            if status != active:
                why = f"subscriber {SubscriberStatus(status)} before sending"
            elif paused_until is not None and paused_until > now:
                why = "subscriber paused before sending"
            out[sid] = (email, name, why)
        return out

    def find(self, email: str) -> Subscriber | None:
        """The subscriber with this (normalized) address, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.email == email)).first()
        return None if row is None else _row(row)

    def iter(
        self,
        *,
        status: SubscriberStatus | None = None,
        list_name: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Subscriber]:
        """Stream subscribers in id order, ``batch_size`` rows per query (never all at once)."""
        last_id = 0
        while True:
            query = sa.select(t).where(t.c.id > last_id).order_by(t.c.id).limit(batch_size)
            if status is not None:
                query = query.where(t.c.status == status.value)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                sub = _row(row)
                if list_name is None or list_name in sub.lists:
                    yield sub
            last_id = rows[-1].id

    def set_status(
        self, email: str, status: SubscriberStatus, *, source: str, now: datetime
    ) -> Subscriber:
        """Change a subscriber's status, recording when and why."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(t)
                .where(t.c.email == email)
                .values(
                    status=status.value, status_changed_at=now, status_source=source, updated_at=now
                )
            )
        if result.rowcount == 0:
            raise SubscriberError(f"{email} is not a subscriber")
        found = self.find(email)
        assert found is not None
        return found

    def remove_from_list(self, email: str, list_name: str, now: datetime) -> Subscriber:
        """Take a subscriber off one list (the record and its history stay)."""
        sub = self.find(email)
        if sub is None:
            raise SubscriberError(f"{email} is not a subscriber")
        if list_name not in sub.lists:
            raise SubscriberError(f"{email} is not on the list {list_name!r}")
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.id == sub.id)
                .values(lists=sorted(set(sub.lists) - {list_name}), updated_at=now)
            )
        return self.get(sub.id)

    def count(self) -> dict[str, int]:
        """Number of subscribers per status."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status)).all()
        return {row[0]: int(row[1]) for row in rows}

    def update(
        self,
        subscriber_id: int,
        now: datetime,
        **changes: Any,
    ) -> Subscriber:
        """Change some of ``name``, ``locale``, ``lists``, ``paused_until``, ``status``,
        ``consent_at``, ``consent_source`` of one subscriber (a status change is stamped
        with ``status_source``, which must then be given)."""
        allowed = {"name", "locale", "lists", "paused_until", "status", "consent_at"}
        allowed |= {"consent_source", "status_source"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update subscriber field(s) {sorted(unknown)}")
        values = dict(changes, updated_at=now)
        if "lists" in values:
            values["lists"] = sorted(set(values["lists"]))
        if "status" in values:
            if "status_source" not in values:
                raise ValueError("a status change needs a status_source")
            values["status"] = SubscriberStatus(values["status"]).value
            values["status_changed_at"] = now
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(t).where(t.c.id == subscriber_id).values(**values))
        if result.rowcount == 0:
            raise SubscriberError(f"no subscriber with id {subscriber_id}")
        return self.get(subscriber_id)

    def erase(self, subscriber_id: int, *, reason: str, source: str, now: datetime) -> int:
        """Delete a subscriber with every row naming them, and suppress their address.

        One transaction: either the person is gone and suppressed, or nothing changed.
        Returns the number of delivery rows deleted.
        """
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.c.email).where(t.c.id == subscriber_id)).first()
            if row is None:
                raise SubscriberError(f"no subscriber with id {subscriber_id}")
            if not _suppressed(conn, row.email):
                conn.execute(
                    sa.insert(suppressions).values(
                        email_hash=email_hash(row.email),
                        reason=reason,
                        source=source[:300],
                        created_at=now,
                    )
                )
            # their provider events and clicks/opens go too (counts drop with them)
            theirs = sa.select(deliveries.c.id).where(deliveries.c.subscriber_id == subscriber_id)
            conn.execute(
                sa.delete(webhook_events).where(
                    sa.or_(
                        webhook_events.c.subscriber_id == subscriber_id,
                        webhook_events.c.delivery_id.in_(theirs),
                    )
                )
            )
            gone = conn.execute(
                sa.delete(deliveries).where(deliveries.c.subscriber_id == subscriber_id)
            ).rowcount
            for table in (subscriber_events, consents):
                conn.execute(sa.delete(table).where(table.c.subscriber_id == subscriber_id))
            conn.execute(sa.delete(t).where(t.c.id == subscriber_id))
        return int(gone)
