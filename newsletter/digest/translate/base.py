"""The translator interface: one required method, like an httpx transport.

A translator turns a batch of HTML fragments from one language into another. It never
raises anything but :class:`TranslationError`, so the digest can fall back to the
language chain whenever machine translation is unavailable.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from types import TracebackType

from newsletter.errors import NewsletterError


class TranslationError(NewsletterError):
    """A translation request failed.

    ``retryable`` is True when the same request may succeed later (rate limit, server
    error, network), False when it will not without a change (bad key, quota used up,
    unsupported language, request too large).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class Translator(abc.ABC):
    """Translates HTML fragments between languages; subclasses implement :meth:`translate`.

    Language codes are the project's locale codes ("bg", "en", "de"); each adapter maps
    them to its provider's codes.
    """

    #: short provider name, stored with each cached translation
    name: str = "translator"

    @abc.abstractmethod
    def translate(self, texts: Sequence[str], *, source: str, target: str) -> list[str]:
        """Translate ``texts`` (HTML fragments) from ``source`` to ``target``, in order.

        Returns one translated fragment per input; raises :class:`TranslationError`.
        """

    def supports(self, target: str) -> bool:
        """Whether this translator can translate into ``target``."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook, like httpx.BaseTransport.close
        """Release connections; the default holds none."""

    def __enter__(self) -> Translator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
