"""The ``[provider]`` table: the keys every provider shares.

Each provider's own model (``PostmarkProviderConfig`` and so on) lives beside its adapter
in ``newsletter/send/providers/<name>.py`` as the class's ``config_type``; the table is
validated against the model that its ``name`` picks from the registry
(:data:`newsletter.send.providers.PROVIDERS`).
"""

from __future__ import annotations

from pydantic import Field

from newsletter.config.base import Model

__all__ = ["HttpProviderBase", "ProviderBase"]


class ProviderBase(Model):
    """Keys every ``[provider]`` table has: its name, batching and the sending rate limits.

    ``batch_size`` above the provider's own limit is refused at start (the provider class
    knows its limit); the rates are shared by every sender in one process.
    """

    name: str = Field(
        description='Which provider sends the mail: a registered provider name, e.g. "outbox".'
    )
    batch_size: int | None = Field(
        default=None,
        gt=0,
        description="Messages handed to the provider in one batch; unset means the "
        "provider's own maximum, and a value above that maximum is refused at start.",
    )
    messages_per_second: float | None = Field(
        default=None,
        gt=0,
        description="Most messages handed to the provider per second by one process; "
        "unset means unlimited.",
    )
    requests_per_second: float | None = Field(
        default=None,
        gt=0,
        description="Most API requests (batches) sent per second by one process; unset "
        "means unlimited.",
    )
    concurrency: int = Field(
        default=1,
        gt=0,
        le=64,
        description="Batches in flight at once from one process (1 to 64).",
    )


class HttpProviderBase(ProviderBase):
    """Keys of every provider reached over HTTP with the shared pooled ``httpx.AsyncClient``."""

    base_url: str | None = Field(
        default=None,
        description="Address of the provider's API instead of its public host (EU "
        "regions, proxies, tests); unset means the provider's default.",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds allowed for connecting, writing and reading one API request.",
    )
