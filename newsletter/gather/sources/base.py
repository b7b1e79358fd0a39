"""The source interface: one required method, ``fetch``, plus shared HTTP helpers.

A source turns one configured location (a folder, a feed, a listing page) into
:class:`~newsletter.models.SourceItem` records. It does no sanitizing and no storing; the
gatherer does both. Sources share one injected :class:`~newsletter.gather.netguard.GuardedClient`,
so the destination guard, the limits and the connection pool are configured in one place.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from types import TracebackType
from typing import ClassVar, Generic, Self, TypeVar
from zoneinfo import ZoneInfo

from newsletter.config import Gather, SourceBase
from newsletter.gather.netguard import USER_AGENT, GuardedClient
from newsletter.gather.sources.fetch import Fetched, fetch_url
from newsletter.models import SourceItem

#: dates without a time or zone are read as local time of the cluster
DEFAULT_TZ = ZoneInfo("Europe/Sofia")

__all__ = [
    "DEFAULT_TZ",
    "USER_AGENT",
    "FetchResult",
    "Fetched",
    "Source",
    "SourceState",
    "default_client",
    "http_get",
    "parse_date",
    "to_utc",
]


@dataclass(frozen=True)
class SourceState:
    """What a source remembers between gathers, for conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """What one ``fetch`` produced.

    ``etag``/``last_modified`` are the validators to send next time; ``not_modified`` means
    the server answered 304 and ``items`` is empty. ``warnings`` name parts that were
    skipped (a file with a bad date, an article page that failed) while the rest loaded.
    """

    items: list[SourceItem]
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    warnings: list[str] = field(default_factory=list)


#: the ``[[sources]]`` model a source is built from
ConfigT = TypeVar("ConfigT", bound=SourceBase)


class Source(abc.ABC, Generic[ConfigT]):
    """A place news items come from; subclasses implement :meth:`fetch`.

    ``client`` is shared and owned by the caller; when ``None`` is given the source builds
    its own from ``policy`` (the ``[gather]`` table) and closes it in :meth:`close`.

    A concrete subclass names its ``kind`` (as written in ``[[sources]] kind = ...``) and
    its ``config_type``, the model of its table, whose ``kind`` field is that same literal;
    the registry (:data:`newsletter.gather.sources.SOURCES`) finds it by importing its
    module.
    """

    #: registry key, as written in ``[[sources]] kind = ...``
    kind: ClassVar[str]
    #: the model of the source's table, validated when ``kind`` picks this class
    config_type: ClassVar[type[SourceBase]]

    def __init__(
        self, config: ConfigT, client: GuardedClient | None = None, policy: Gather | None = None
    ) -> None:
        self.config = config
        self._owns_client = client is None
        self.client = client if client is not None else default_client(policy)

    @abc.abstractmethod
    def fetch(self, state: SourceState) -> FetchResult:
        """Read the source and return its current items.

        Raises :class:`~newsletter.errors.SourceError` (one line naming the URL or path)
        when the source as a whole cannot be read.
        """

    def close(self) -> None:
        """Release the HTTP client if this source created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def default_client(policy: Gather | None = None) -> GuardedClient:
    """The client for gathering: public destinations only, except ``policy``'s allow-list."""
    return GuardedClient(policy)


def http_get(
    client: GuardedClient,
    url: str,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
    allow_not_modified: bool = False,
) -> Fetched:
    """GET ``url`` guarded and bounded (see :func:`newsletter.gather.sources.fetch.fetch_url`)."""
    return fetch_url(
        client, url, timeout=timeout, headers=headers, allow_not_modified=allow_not_modified
    )


_DMY = re.compile(r"^\s*(?:Дата:\s*)?(\d{1,2})\.(\d{1,2})\.(\d{4})\s*(?:г\.?|год\.?)?\s*$")


def parse_date(value: object, tz: tzinfo = DEFAULT_TZ) -> datetime:
    """A timezone-aware datetime from a date, datetime or string.

    Accepts ``YYYY-MM-DD``, full ISO 8601 datetimes and ``15.10.2012`` / ``15.10.2012г.``
    (optionally after ``Дата:``). Values without a time are 00:00 and values without a
    zone are local time in ``tz``. Raises ``ValueError`` with the offending value.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str):
        text = value.strip()
        match = _DMY.match(text)
        try:
            if match:
                day, month, year = (int(g) for g in match.groups())
                parsed = datetime(year, month, day)
            else:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"not a date: {value!r}") from exc
    else:
        raise ValueError(f"not a date: {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def to_utc(value: datetime) -> datetime:
    """``value`` converted to UTC."""
    return value.astimezone(UTC)
