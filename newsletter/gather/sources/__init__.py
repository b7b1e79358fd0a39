"""Sources of news items, picked from a registry by the config's ``kind``.

The registry is discovered, not listed: every module of this package is imported and
each concrete :class:`Source` subclass defined in it is registered under its own
``kind``, with its ``config_type`` (the ``[[sources]]`` model, defined beside it) used to
validate the table. Two classes with one kind fail at import. A new source kind is one
module here: the adapter class and its config model.
"""

from __future__ import annotations

from typing import Any

from newsletter.config import Gather, SourceBase
from newsletter.config.registry import discover
from newsletter.errors import ConfigError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.sources.base import FetchResult, Source, SourceState
from newsletter.gather.sources.feed import FeedSource, FeedSourceConfig
from newsletter.gather.sources.folder import FolderSource, FolderSourceConfig
from newsletter.gather.sources.page import PageSource, PageSourceConfig

#: every source class by its own ``kind``, found in this package's modules
# an abstract base is what discover() looks for subclasses of (mypy #4717)
SOURCES: dict[str, type[Source[Any]]] = discover(__name__, __path__, Source, "kind")  # type: ignore[type-abstract]


def build_source(
    config: SourceBase,
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
    "FeedSourceConfig",
    "FetchResult",
    "FolderSource",
    "FolderSourceConfig",
    "PageSource",
    "PageSourceConfig",
    "Source",
    "SourceBase",
    "SourceState",
    "build_source",
]
