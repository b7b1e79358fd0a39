"""First-party click and open tracking: signed link tokens and the rewriting of an email.

A tracked link is ``<base_url>/r/<token>``. The token is compact and URL-safe:
``<payload>.<mac>``, both base64url without padding. The payload names the edition, the
delivery (empty with ``[tracking] anonymous = true``), the locale and the target; the MAC is
HMAC-SHA256 over the purpose and the payload, cut to 96 bits. The purpose (``click`` or
``open``) is inside the MAC, so a pixel token is not a link token and neither is any other
kind of token. Every configured signing secret verifies, the first signs (key rotation as
in :mod:`newsletter.send.tokens`). The redirect goes only to the target inside a genuine
token: nothing from the query string is ever used.

Only messages to subscribers are rewritten (:class:`LinkTracker` is used by the composer),
so the archive, previews and test sends keep the plain links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html as html_lib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from newsletter.errors import ConfigError
from newsletter.send.tokens import TokenError

__all__ = ["PURPOSES", "LinkTracker", "Tracked", "TrackingSigner"]

PURPOSES: Final = ("click", "open")
_MAC_BYTES: Final = 12
_LOCALE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_HREF = re.compile(r'href="(https?://[^"<>\s]+)"', re.IGNORECASE)
_SAFE_TARGET = re.compile(r"^https?://[^\s<>\"\\\x00-\x1f\x7f]+$", re.IGNORECASE)


@dataclass(frozen=True)
class Tracked:
    """What a verified tracking token says."""

    purpose: str
    edition_id: int
    delivery_id: int | None
    locale: str
    #: the link's target ('' for an open)
    target: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TrackingSigner:
    """Signs and verifies tracking tokens; the first of ``secrets`` signs, all verify."""

    def __init__(self, secrets: Sequence[str]) -> None:
        keys = [s.encode("utf-8") for s in secrets if s]
        if not keys:
            raise ConfigError("no signing secret configured (the secret list is empty)")
        # a key of its own for tracking, so these MACs never equal another token's
        self._keys = [hashlib.sha256(b"newsletter-tracking\0" + k).digest() for k in keys]

    def _mac(self, key: bytes, purpose: str, payload: bytes) -> bytes:
        message = purpose.encode("ascii") + b"\0" + payload
        return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(
        self,
        purpose: str,
        *,
        edition_id: int,
        delivery_id: int | None,
        locale: str,
        target: str = "",
    ) -> str:
        """A URL-safe token for one link (or the open pixel) of one message."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown tracking purpose {purpose!r}")
        fields = (str(edition_id), str(delivery_id or ""), locale, target)
        payload = "\n".join(fields).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._mac(self._keys[0], purpose, payload))}"

    def verify(self, purpose: str, token: str) -> Tracked:
        """The data in a genuine token for ``purpose``; :class:`TokenError` otherwise."""
        if purpose not in PURPOSES or len(token) > 8000:
            raise TokenError(f"invalid {purpose} token")
        head, dot, tail = token.partition(".")
        try:
            payload, mac = _unb64(head), _unb64(tail)
        except ValueError:
            raise TokenError(f"invalid {purpose} token") from None
        if not dot or not any(
            hmac.compare_digest(mac, self._mac(k, purpose, payload)) for k in self._keys
        ):
            raise TokenError(f"invalid {purpose} token")
        # genuine, but checked again: an older format must not crash or redirect oddly
        try:
            edition, delivery, locale, target = payload.decode("utf-8").split("\n")
            edition_id = int(edition)
            delivery_id = int(delivery) if delivery else None
        except ValueError:
            raise TokenError(f"invalid {purpose} token payload") from None
        if edition_id < 1 or not _LOCALE.match(locale):
            raise TokenError(f"invalid {purpose} token payload")
        if purpose == "click" and not _SAFE_TARGET.match(target):
            raise TokenError(f"invalid {purpose} token target")
        return Tracked(purpose, edition_id, delivery_id, locale, target)


class LinkTracker:
    """Rewrites an email's outgoing links through ``/r/`` and adds the open pixel."""

    def __init__(
        self,
        signer: TrackingSigner,
        base_url: str,
        *,
        clicks: bool,
        opens: bool,
        anonymous: bool,
    ) -> None:
        self.signer = signer
        self.base = base_url.rstrip("/")
        self.clicks = clicks
        self.opens = opens
        self.anonymous = anonymous

    def rewrite(self, html: str, *, edition_id: int, locale: str, delivery_id: int | None) -> str:
        """``html`` with each outside link tracked (our own pages stay as they are)."""
        delivery = None if self.anonymous else delivery_id
        if self.clicks:
            tokens: dict[str, str] = {}

            def swap(match: re.Match[str]) -> str:
                raw = match.group(1)
                if raw.startswith(self.base + "/") and not raw.startswith(self.base + "/story/"):
                    return match.group(0)  # unsubscribe, preferences, archive: not tracked
                token = tokens.get(raw)
                if token is None:
                    target = html_lib.unescape(raw)
                    if not _SAFE_TARGET.match(target):
                        return match.group(0)
                    token = self.signer.sign(
                        "click",
                        edition_id=edition_id,
                        delivery_id=delivery,
                        locale=locale,
                        target=target,
                    )
                    tokens[raw] = token
                return f'href="{self.base}/r/{token}"'

            html = _HREF.sub(swap, html)
        if self.opens:
            token = self.signer.sign(
                "open", edition_id=edition_id, delivery_id=delivery, locale=locale
            )
            pixel = (
                f'<img src="{self.base}/o/{token}" width="1" height="1" alt="" '
                'style="display:block;border:0;width:1px;height:1px;">'
            )
            at = html.lower().rfind("</body>")
            html = html[:at] + pixel + html[at:] if at >= 0 else html + pixel
        return html
