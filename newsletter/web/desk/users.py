"""Desk accounts as a library: roles, argon2 password hashes, add/change/remove.

Used by ``newsletter desk ...`` and by the desk's own user pages; every change is written
to the audit log with its actor (a desk user's address, or ``cli``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from newsletter.audience.subscribers import normalize_email
from newsletter.errors import DeskError, SubscriberError
from newsletter.store import Store
from newsletter.store.desk import DeskUser

#: admin: everything, users too; editor: stories, editions, subscribers; translator:
#: the translations of their own locales only
ROLES: Final = ("admin", "editor", "translator")
MIN_PASSWORD: Final = 10
MAX_PASSWORD: Final = 1024

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # verified against for unknown accounts, so they cost the same time as known ones
    return _hasher.hash("not the password of anyone at all")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` after checking its length."""
    if len(password) < MIN_PASSWORD:
        raise DeskError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise DeskError(f"the password must have at most {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(user: DeskUser | None, password: str) -> bool:
    """Whether ``password`` is ``user``'s; with no user a dummy hash is checked, so the
    answer takes as long for an unknown address as for a wrong password."""
    stored = user.password_hash if user is not None else _dummy_hash()
    ok: bool
    try:
        ok = _hasher.verify(stored, password[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    return ok and user is not None


def parse_locales(raw: str | Iterable[str], available: Iterable[str]) -> tuple[str, ...]:
    """Locale codes from ``de,ro`` (or a list), each one of ``available``."""
    known = list(available)
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    found: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if part not in known:
            raise DeskError(f"locale {part!r} is not configured (known: {', '.join(known)})")
        if part not in found:
            found.append(part)
    return tuple(found)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise DeskError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def _address(email: str) -> str:
    try:
        return normalize_email(email)
    except SubscriberError as exc:
        raise DeskError(str(exc)) from exc


def add_user(
    store: Store,
    email: str,
    role: str,
    password: str,
    *,
    locales: tuple[str, ...] = (),
    actor: str,
    now: datetime,
) -> DeskUser:
    """Create an account; translators need at least one locale."""
    _check_role(role)
    address = _address(email)
    if role == "translator" and not locales:
        raise DeskError("a translator needs --locales (the languages they translate into)")
    user = store.desk.add_user(address, role, locales, hash_password(password), now)
    store.desk.audit(actor, "user.add", address, now, {"role": role, "locales": list(locales)})
    return user


def get_user(store: Store, email: str) -> DeskUser:
    """The account of ``email``, or :class:`DeskError`."""
    user = store.desk.find_user(_address(email))
    if user is None:
        raise DeskError(f"{email}: no desk account with this address")
    return user


def change_user(
    store: Store,
    email: str,
    *,
    role: str | None = None,
    locales: tuple[str, ...] | None = None,
    actor: str,
    now: datetime,
) -> DeskUser:
    """Change an account's role or locales (its sessions end on a role change)."""
    user = get_user(store, email)
    if role is not None:
        _check_role(role)
    store.desk.update_user(user.id, now, role=role, locales=locales)
    detail: dict[str, object] = {}
    if role is not None:
        detail["role"] = role
    if locales is not None:
        detail["locales"] = list(locales)
    store.desk.audit(actor, "user.change", user.email, now, detail)
    return get_user(store, email)


def reset_password(store: Store, email: str, password: str, *, actor: str, now: datetime) -> None:
    """Give an account a new password; every session of it ends."""
    user = get_user(store, email)
    store.desk.update_user(user.id, now, password_hash=hash_password(password))
    store.desk.audit(actor, "user.reset-password", user.email, now)


def remove_user(store: Store, email: str, *, actor: str, now: datetime) -> None:
    """Delete an account; the last admin cannot be removed."""
    user = get_user(store, email)
    if user.role == "admin" and sum(u.role == "admin" for u in store.desk.users()) == 1:
        raise DeskError(f"{user.email}: the last admin account cannot be removed")
    store.desk.remove_user(user.id)
    store.desk.audit(actor, "user.remove", user.email, now)
