"""The one interface every email provider implements (like httpx's ``BaseTransport``)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from newsletter.errors import ProviderError
from newsletter.models import OutgoingMessage, SendResult

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.config.providers import ProviderBase

__all__ = ["Found", "Probe", "Provider"]


@dataclass(frozen=True)
class Probe:
    """One message whose outcome is unknown, as :meth:`Provider.lookup` looks it up."""

    delivery_id: int
    edition_id: int
    to_email: str
    #: the message cannot have reached the provider before this moment
    since: datetime


#: what a lookup found, by delivery id: the provider's message id of a message it
#: accepted, or None where it surely has none; a probe left out could not be checked
Found = dict[int, str | None]


class Provider(abc.ABC):
    """Sends batches of personalized messages; one required method, :meth:`send_batch`.

    Contract (``tests/send/providers/test_contract.py`` checks it for every registered
    provider):

    - :meth:`send_batch` returns exactly one :class:`SendResult` per message, in the order
      given, each carrying that message's ``delivery_id``. ``ACCEPTED`` means the provider
      took responsibility for the message and has a ``provider_message_id`` for it;
      ``RETRYABLE`` means try the same message later (``retry_after`` when the provider
      said how long); ``PERMANENT`` means this message will never be accepted (invalid
      recipient, rejected content); ``UNKNOWN`` means the message may or may not have been
      taken (the request was complete at the provider but no answer came back) and sending
      it again could deliver it twice. Only a provider without :attr:`supports_idempotency`
      answers ``UNKNOWN``; an idempotent one answers ``RETRYABLE`` there, since a resend
      with the same key is deduplicated. A message that surely did not reach the provider
      (connection refused, connect or pool timeout, request not fully written) is
      ``RETRYABLE``, never ``UNKNOWN``.
    - It never raises for a problem of one recipient or one message: that is a result.
      It raises :class:`~newsletter.errors.ProviderError` only when the provider as a
      whole cannot be used (bad credentials, account suspended, unwritable folder), so the
      caller stops sending instead of marking every message failed.
    - Batches hold at most :attr:`max_batch` messages; a larger one is a programming error
      (``ValueError``). Callers split with ``min(configured batch size, max_batch)``.
    - When :attr:`supports_idempotency` is true, sending a message again with the same
      ``idempotency_key`` does not deliver it twice.
    - Use it as ``async with provider: ...``; :meth:`aclose` releases connections and
      files. Subclasses that override :meth:`aclose` call ``await super().aclose()``.
    """

    #: registry name, as written in ``[provider] name = ...``; the registry
    #: (:data:`newsletter.send.providers.PROVIDERS`) is keyed by it
    name: ClassVar[str]
    #: the model of the ``[provider]`` table, validated when ``name`` picks this class;
    #: its ``name`` field defaults to the class's :attr:`name`
    config_type: ClassVar[type[ProviderBase]]
    #: the largest batch :meth:`send_batch` accepts
    max_batch: ClassVar[int] = 1
    #: whether resending with the same ``idempotency_key`` is deduplicated
    supports_idempotency: ClassVar[bool] = False
    #: False when the provider sends only :attr:`OutgoingMessage.shared` bodies and the
    #: recipients' substitutions: the engine then skips building each personal body
    personal_bodies: ClassVar[bool] = True

    #: how far back :meth:`lookup` can see (the provider's shortest retention of what it
    #: searches); None when the provider cannot tell what it accepted
    lookup_horizon: ClassVar[timedelta | None] = None

    _closed: bool = False

    @classmethod
    def from_config(cls, config: Any, settings: Settings) -> Self:
        """Build the provider from its ``[provider]`` table and the whole settings."""
        raise NotImplementedError(f"{cls.__name__} does not implement from_config")

    @abc.abstractmethod
    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send ``messages``; one result per message, in order (see the class docstring)."""

    async def lookup(self, probes: Sequence[Probe]) -> Found:
        """Ask the provider which of these messages it accepted (see :data:`Found`).

        Optional: only providers with a :attr:`lookup_horizon` implement it. A probe the
        provider could not answer for is left out, never guessed; :class:`ProviderError`
        means the lookup cannot work at all (no such API, credentials refused).
        """
        raise ProviderError(f"{self.name} cannot tell which messages it accepted")

    def local_folder(self) -> Path | None:
        """The folder where this provider writes its messages on this machine, if it does
        (the outbox); the digest puts the browsable variant pages beside them."""
        return None

    async def aclose(self) -> None:
        """Release what the provider holds; safe to call twice."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    def check_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Refuse a batch larger than :attr:`max_batch` (a caller bug, not a send failure)."""
        if len(messages) > self.max_batch:
            raise ValueError(
                f"{self.name}: batch of {len(messages)} exceeds max_batch {self.max_batch}"
            )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
