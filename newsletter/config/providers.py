"""The ``[provider]`` table: one config model per provider, told apart by ``name``.

A new provider adds its model here and to :data:`ProviderConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from newsletter.config.base import Model, RelPath

__all__ = ["HttpProviderBase", "OutboxProviderConfig", "ProviderBase", "ProviderConfig"]


class ProviderBase(Model):
    """Keys every ``[provider]`` table has: batching and the sending rate limits.

    ``batch_size`` above the provider's own limit is refused at start (the provider class
    knows its limit); the rates are shared by every sender in one process.
    """

    batch_size: int | None = Field(default=None, gt=0)
    #: messages handed to the provider per second (None: unlimited)
    messages_per_second: float | None = Field(default=None, gt=0)
    #: API requests (batches) per second (None: unlimited)
    requests_per_second: float | None = Field(default=None, gt=0)
    #: batches in flight at once from one process
    concurrency: int = Field(default=1, gt=0, le=64)


class HttpProviderBase(ProviderBase):
    """Keys of every provider reached over HTTP with the shared pooled ``httpx.AsyncClient``."""

    #: overrides the provider's default host (EU regions, proxies, tests)
    base_url: str | None = None
    #: seconds for connect, read and write of one request
    timeout: float = Field(default=30.0, gt=0)


class OutboxProviderConfig(ProviderBase):
    """Writes one .eml per message into a folder instead of sending."""

    name: Literal["outbox"] = "outbox"
    path: RelPath = Path("outbox")
    batch_size: int | None = Field(default=200, gt=0)


ProviderConfig = Annotated[OutboxProviderConfig, Field(discriminator="name")]
