"""Sources of news items, picked from a registry by the config's ``kind``."""

from __future__ import annotations

from typing import Any

from newsletter.config import FeedSourceConfig, FolderSourceConfig, Gather, PageSourceConfig
from newsletter.errors import ConfigError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.sources.base import FetchResult, Source, SourceState
from newsletter.gather.sources.feed import FeedSource
from newsletter.gather.sources.folder import FolderSource
from newsletter.gather.sources.page import PageSource

#: kind (as written in config.toml) -> adapter class
SOURCES: dict[str, type[Source[Any]]] = {
    "folder": FolderSource,
    "feed": FeedSource,
    "page": PageSource,
}


def build_source(
    config: FolderSourceConfig | FeedSourceConfig | PageSourceConfig,
    client: GuardedClient | None = None,
    policy: Gather | None = None,
) -> Source[Any]:
    """The adapter for ``config.kind``, sharing ``client`` (else its own, from ``policy``)."""
    try:
        cls = SOURCES[config.kind]
    except KeyError as exc:
        known = ", ".join(sorted(SOURCES))
        raise ConfigError(
            f"source {config.name!r}: unknown kind {config.kind!r} ({known})"
        ) from exc
    return cls(config, client, policy)


__all__ = [
    "SOURCES",
    "FeedSource",
    "FetchResult",
    "FolderSource",
    "PageSource",
    "Source",
    "SourceState",
    "build_source",
]
