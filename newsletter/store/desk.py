"""The desk's records: staff accounts, server-side sessions and the audit log.

Sessions are stored by the SHA-256 of their random id: the cookie carries the id, the
database only its hash, so reading the database (a backup, say) opens no session.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from newsletter.errors import DeskError
from newsletter.store.tables import desk_audit, desk_sessions, desk_users

__all__ = [
    "AuditEntry",
    "DeskSession",
    "DeskStore",
    "DeskUser",
    "session_hash",
]


@dataclass(frozen=True)
class DeskUser:
    """A staff account (the hash stays in the store module and the login check)."""

    id: int
    email: str
    role: str
    locales: tuple[str, ...]
    created_at: datetime
    password_hash: str = field(repr=False, default="")


@dataclass(frozen=True)
class DeskSession:
    """A logged-in session row."""

    id_hash: str
    user_id: int
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One change: who did what to which record, and when."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def session_hash(session_id: str) -> str:
    """The stored form of a session id."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def _user(row: Any) -> DeskUser:
    return DeskUser(
        id=row.id,
        email=row.email,
        role=row.role,
        locales=tuple(row.locales or ()),
        created_at=row.created_at,
        password_hash=row.password_hash,
    )


class DeskStore:
    """Queries over the desk's tables."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- users ------------------------------------------------------------------------

    def add_user(
        self, email: str, role: str, locales: tuple[str, ...], password_hash: str, now: datetime
    ) -> DeskUser:
        """Store a new account; :class:`DeskError` if the address has one."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(desk_users.c.id).where(desk_users.c.email == email)).first():
                raise DeskError(f"{email}: a desk account with this address exists")
            conn.execute(
                desk_users.insert().values(
                    email=email,
                    role=role,
                    locales=list(locales),
                    password_hash=password_hash,
                    created_at=now,
                    updated_at=now,
                )
            )
        user = self.find_user(email)
        assert user is not None
        return user

    def find_user(self, email: str) -> DeskUser | None:
        """The account of ``email`` (already normalized), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(desk_users).where(desk_users.c.email == email)).first()
        return _user(row) if row else None

    def get_user(self, user_id: int) -> DeskUser | None:
        """The account with ``user_id``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(desk_users).where(desk_users.c.id == user_id)).first()
        return _user(row) if row else None

    def users(self) -> builtins.list[DeskUser]:
        """Every account, by address."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(desk_users).order_by(desk_users.c.email)).all()
        return [_user(r) for r in rows]

    def update_user(
        self,
        user_id: int,
        now: datetime,
        *,
        role: str | None = None,
        locales: tuple[str, ...] | None = None,
        password_hash: str | None = None,
    ) -> None:
        """Change an account; a new password also ends all of its sessions."""
        values: dict[str, Any] = {"updated_at": now}
        if role is not None:
            values["role"] = role
        if locales is not None:
            values["locales"] = list(locales)
        if password_hash is not None:
            values["password_hash"] = password_hash
        with self.engine.begin() as conn:
            done = conn.execute(
                desk_users.update().where(desk_users.c.id == user_id).values(**values)
            )
            if done.rowcount == 0:
                raise DeskError(f"desk account {user_id} does not exist")
            if password_hash is not None or role is not None:
                conn.execute(desk_sessions.delete().where(desk_sessions.c.user_id == user_id))

    def remove_user(self, user_id: int) -> None:
        """Delete an account and its sessions (the audit trail keeps its address)."""
        with self.engine.begin() as conn:
            conn.execute(desk_sessions.delete().where(desk_sessions.c.user_id == user_id))
            done = conn.execute(desk_users.delete().where(desk_users.c.id == user_id))
            if done.rowcount == 0:
                raise DeskError(f"desk account {user_id} does not exist")

    # -- sessions ---------------------------------------------------------------------

    def create_session(self, session_id: str, user_id: int, now: datetime) -> None:
        """Store a new session for ``user_id``."""
        with self.engine.begin() as conn:
            conn.execute(
                desk_sessions.insert().values(
                    id_hash=session_hash(session_id),
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                )
            )

    def session(self, session_id: str) -> DeskSession | None:
        """The session with this (cookie) id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(desk_sessions).where(desk_sessions.c.id_hash == session_hash(session_id))
            ).first()
        if row is None:
            return None
        return DeskSession(row.id_hash, row.user_id, row.created_at, row.last_seen_at)

    def touch_session(self, session_id: str, now: datetime) -> None:
        """Record activity on a session (its idle timeout starts again)."""
        with self.engine.begin() as conn:
            conn.execute(
                desk_sessions.update()
                .where(desk_sessions.c.id_hash == session_hash(session_id))
                .values(last_seen_at=now)
            )

    def end_session(self, session_id: str) -> None:
        """Forget a session (logout, timeout)."""
        with self.engine.begin() as conn:
            conn.execute(
                desk_sessions.delete().where(desk_sessions.c.id_hash == session_hash(session_id))
            )

    def purge_sessions(self, idle_before: datetime, created_before: datetime) -> int:
        """Delete sessions idle or old past their timeouts; how many."""
        with self.engine.begin() as conn:
            done = conn.execute(
                desk_sessions.delete().where(
                    sa.or_(
                        desk_sessions.c.last_seen_at < idle_before,
                        desk_sessions.c.created_at < created_before,
                    )
                )
            )
        return int(done.rowcount or 0)

    # -- audit ------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        target: str,
        now: datetime,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one change."""
        with self.engine.begin() as conn:
            conn.execute(
                desk_audit.insert().values(
                    at=now,
                    actor=actor[:320],
                    action=action[:100],
                    target=target[:500],
                    detail=dict(detail or {}),
                )
            )

    def audit_log(self, *, limit: int = 200, actor: str | None = None) -> builtins.list[AuditEntry]:
        """The newest entries first."""
        query = sa.select(desk_audit).order_by(desk_audit.c.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(desk_audit.c.actor == actor)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEntry(r.id, r.at, r.actor, r.action, r.target, dict(r.detail or {})) for r in rows
        ]
