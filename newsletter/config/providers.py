"""The ``[provider]`` table: one config model per provider, told apart by ``name``.

A new provider adds its model here and to :data:`ProviderConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from newsletter.config.base import Model, RelPath

__all__ = ["OutboxProviderConfig", "ProviderConfig"]


class OutboxProviderConfig(Model):
    """Writes one .eml per message into a folder instead of sending."""

    name: Literal["outbox"] = "outbox"
    path: RelPath = Path("outbox")
    batch_size: int = Field(default=200, gt=0)


ProviderConfig = Annotated[OutboxProviderConfig, Field(discriminator="name")]
