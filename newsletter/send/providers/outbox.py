"""The default provider: writes every message as the .eml file that would be sent."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self

from pydantic import Field

from newsletter.config.base import RelPath
from newsletter.config.providers import ProviderBase
from newsletter.errors import ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send import mime as message
from newsletter.send.providers.base import Provider
from newsletter.send.providers.configured import check_batch_size

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["OutboxProvider", "OutboxProviderConfig"]

#: folder for messages that belong to no edition (test sends, ad-hoc mails)
ADHOC: Final = "adhoc"
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def _safe_name(value: str, limit: int = 100) -> str:
    """A file-system-safe, traversal-free version of ``value`` (may be empty)."""
    return _UNSAFE.sub("_", value).strip("._")[:limit]


def _valid_recipient(addr: str) -> bool:
    local, at, domain = addr.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() for c in addr)


class OutboxProviderConfig(ProviderBase):
    """``[provider] name = "outbox"``, the default: one .eml per message in a folder, no
    sending."""

    name: Literal["outbox"] = Field(
        default="outbox", description='Selects the outbox, which writes files: "outbox".'
    )
    path: RelPath = Field(
        default=Path("outbox"),
        description="Folder the .eml files are written into, relative to the config file.",
    )
    batch_size: int | None = Field(
        default=200,
        gt=0,
        description="Messages written in one batch (at most 1000, the outbox's limit).",
    )


class OutboxProvider(Provider):
    """Writes one .eml per message under ``folder/<edition label or "adhoc">/``.

    Files are named ``<delivery id, 8 digits>-<recipient>.eml`` and written atomically
    (a hidden temporary file in the same folder, then :func:`os.replace`), so a crash
    leaves either the whole file or none. Writing the same delivery again replaces its
    file, which makes resends idempotent. ``fsync`` trades speed for surviving a power
    loss, not only a process crash.
    """

    name: ClassVar[str] = "outbox"
    max_batch: ClassVar[int] = 1000
    supports_idempotency: ClassVar[bool] = True
    config_type: ClassVar[type[OutboxProviderConfig]] = OutboxProviderConfig

    def __init__(self, folder: Path, *, fsync: bool = False) -> None:
        self.folder = folder
        self.fsync = fsync

    @classmethod
    def from_config(cls, config: Any, settings: Settings) -> Self:
        """Build from ``[provider] name = "outbox"``; ``path`` is already resolved."""
        if not isinstance(config, OutboxProviderConfig):
            raise ProviderError(f"outbox: expected an outbox provider config, got {config!r}")
        check_batch_size(cls, config, settings)
        return cls(config.path)

    def local_folder(self) -> Path:
        """The outbox folder: the .eml files are there."""
        return self.folder

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Write each message; ACCEPTED with the file path as provider message id."""
        self.check_batch(messages)
        if self.closed:
            raise ProviderError(f"outbox {self.folder}: provider is closed")
        # file writes block; keep the event loop free for other work (web, scheduler)
        return await asyncio.to_thread(self._write_batch, list(messages))

    def _write_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        return [self._write_one(msg) for msg in messages]

    def _write_one(self, msg: OutgoingMessage) -> SendResult:
        if not _valid_recipient(msg.to_email):
            return SendResult(
                msg.delivery_id,
                ResultStatus.PERMANENT,
                error=f"invalid recipient address {msg.to_email!r}",
            )
        try:
            data = message.to_bytes(msg)
        except ValueError as exc:
            return SendResult(msg.delivery_id, ResultStatus.PERMANENT, error=str(exc))
        folder = self.folder / (_safe_name(msg.metadata.get("edition_label", "")) or ADHOC)
        target = folder / f"{msg.delivery_id:08d}-{_safe_name(msg.to_email.lower())}.eml"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._atomic_write(target, data)
        except OSError as exc:
            # a folder that cannot be written fails every message alike: stop the run
            reason = exc.strerror or exc.__class__.__name__
            raise ProviderError(f"outbox: cannot write {target}: {reason}") from exc
        return SendResult(msg.delivery_id, ResultStatus.ACCEPTED, provider_message_id=str(target))

    def _atomic_write(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
