"""The suppression list: addresses that must never be added or mailed again.

Only a hash of the normalized address is stored, so an erased person leaves no readable
address behind, yet a later CSV import, ``subscribers add`` or sign-up of the same address
is recognised.

Why plain SHA-256 and not an HMAC keyed from the signing secret: a suppression has to hold
for ever, while the signing secrets rotate (tokens.py) and a development key may be lost
with its ``var/`` folder. A keyed hash would silently stop matching after a rotation, and
the erased person could then be re-imported by accident, which is the one thing this list
exists to prevent. The hash is salted with a fixed, versioned prefix so it is not a bare
SHA-256 of an address shared with other systems. Its limit: someone holding the database
and a guessed address can test whether that address is suppressed; they cannot list the
addresses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from newsletter.errors import StoreError
from newsletter.mailbox import simple_normalized
from newsletter.store.tables import suppressions as t

#: changing this prefix would orphan every stored hash: bump the version only with a migration
HASH_PREFIX: Final = "newsletter-suppression-v1:"

#: reasons used by this package; webhook handlers may add their own short words
REASONS: Final = ("erased", "unsubscribed", "bounced", "complained", "manual")


def normalize(email: str) -> str:
    """The canonical form hashed: as ``subscribers.normalize_email`` stores it, lower case.

    An address the validator refuses is still hashed (trimmed, lower case): a provider may
    report an address our validator would not accept, and it must still be suppressible.
    """
    raw = email.strip()
    fast = simple_normalized(raw)
    if fast is not None:
        return fast.lower()
    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return raw.lower()


def email_hash(email: str) -> str:
    """Hex SHA-256 of the normalized address under the versioned prefix."""
    return hashlib.sha256((HASH_PREFIX + normalize(email)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Suppression:
    """One suppression entry (the address itself is not stored)."""

    email_hash: str
    reason: str
    source: str
    created_at: datetime


class SuppressionStore:
    """Queries over the ``suppressions`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, email: str, reason: str, source: str, now: datetime) -> bool:
        """Suppress ``email``; returns False when it already was (the first entry is kept)."""
        key = email_hash(email)
        try:
            with self.engine.begin() as conn:
                if conn.execute(sa.select(t.c.email_hash).where(t.c.email_hash == key)).first():
                    return False
                conn.execute(
                    sa.insert(t).values(
                        email_hash=key, reason=reason, source=source[:300], created_at=now
                    )
                )
        except sa.exc.IntegrityError:
            return False  # added by a concurrent request between our SELECT and INSERT
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"suppressions: cannot add an entry: {exc}") from exc
        return True

    def get(self, email: str) -> Suppression | None:
        """The entry for ``email``, if it is suppressed."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.email_hash == email_hash(email))).first()
        if row is None:
            return None
        return Suppression(row.email_hash, row.reason, row.source, row.created_at)

    def contains(self, email: str) -> bool:
        """Whether ``email`` is suppressed."""
        return self.get(email) is not None

    def remove(self, email: str) -> bool:
        """Lift the suppression of ``email`` (a confirmed new opt-in); False if there was none."""
        with self.engine.begin() as conn:
            result = conn.execute(sa.delete(t).where(t.c.email_hash == email_hash(email)))
        return bool(result.rowcount)

    def count(self) -> dict[str, int]:
        """Number of entries per reason."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.reason, sa.func.count()).group_by(t.c.reason)).all()
        return {row[0]: int(row[1]) for row in rows}
