"""A fast, exact path for the common address: plain ASCII ``local@domain``.

``email_validator`` spends most of an import's time validating the same few domains again
and again. For an address whose local part is an ASCII dot-atom of normal length, its
result is the local part unchanged plus the validated domain; so the domain is validated
once (cached) and the rest is a regular expression. Anything else, and every refusal, goes
through ``email_validator`` itself, so results and error messages stay exactly its own.
"""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email

__all__ = ["simple_normalized"]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@([A-Za-z0-9.-]+)")
# well inside email_validator's limits (64 for the local part, 254 in all)
_MAX_LOCAL = 64
_MAX_TOTAL = 250


@functools.lru_cache(maxsize=65536)
def _domain(domain: str) -> str | None:
    """The normalized form of an address's ``domain``, or ``None`` when it is refused."""
    try:
        return validate_email(f"x@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def simple_normalized(address: str) -> str | None:
    """``validate_email(address).normalized`` for a plain ASCII address, else ``None``.

    ``None`` means "not decided here": the caller runs ``email_validator`` itself (for an
    unusual address, or to get the refusal's own message).
    """
    match = _SIMPLE.fullmatch(address)
    if match is None or len(match[1]) > _MAX_LOCAL or len(address) > _MAX_TOTAL:
        return None
    domain = _domain(match[2])
    return None if domain is None else f"{match[1]}@{domain}"
