"""CSRF tokens for the web forms: signed, tied to one subscriber and one purpose.

The pages use no cookies, so a token is not tied to a session: it is an itsdangerous
signature over (purpose, subscriber id), valid for a few hours. A form posted without it,
with one for another subscriber or another purpose, or with an expired one is refused
with 403. Keys are the signing secrets of ``tokens.py`` (the first signs, all verify), under
their own salt, so a CSRF token can never be used as a link token or the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from itsdangerous import BadData, URLSafeTimedSerializer

#: the form field carrying the token
FIELD: Final = "csrf_token"


class CsrfTokens:
    """Issues and checks form tokens; ``max_age`` in seconds."""

    def __init__(self, secrets: Sequence[str], *, max_age: int = 6 * 3600) -> None:
        keys = [s for s in secrets if s]
        if not keys:
            raise ValueError("no signing secret for CSRF tokens")
        # itsdangerous signs with the last key and verifies with all
        self._serializer = URLSafeTimedSerializer(list(reversed(keys)), salt="newsletter-csrf")
        self.max_age = max_age

    def issue(self, purpose: str, subject: int) -> str:
        """A token for a form of ``purpose`` acting on subscriber ``subject`` (0: nobody)."""
        return str(self._serializer.dumps([purpose, subject]))

    def check(self, token: str | None, purpose: str, subject: int) -> bool:
        """Whether ``token`` was issued for exactly this purpose and subject, recently."""
        if not token:
            return False
        try:
            payload = self._serializer.loads(token, max_age=self.max_age)
        except BadData:
            return False
        return bool(payload == [purpose, subject])
