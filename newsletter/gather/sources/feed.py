"""Feed source: RSS or Atom over HTTP (conditional GET) or from a local file.

httpx fetches the bytes and feedparser only parses them, so timeouts, redirects and test
transports are under our control, never feedparser's own URL opener.
"""

from __future__ import annotations

import calendar
import hashlib
import time
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import feedparser
import lxml.html
from pydantic import ConfigDict, Field, model_validator

from newsletter.config import RelPath, SourceBase
from newsletter.errors import SourceError
from newsletter.gather.sources.base import FetchResult, Source, SourceState, http_get
from newsletter.models import SourceItem
from newsletter.redact import mask_url

# bozo reasons that do not mean the XML is broken
_HARMLESS_BOZO = (feedparser.CharacterEncodingOverride,)


class FeedSourceConfig(SourceBase):
    """``kind = "feed"``: an RSS or Atom feed, fetched over HTTP or read from a local file."""

    #: the keys of a smallest working table besides name and kind (docs and tests use it)
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"url": "https://partner.example.org/feed.xml"}]}
    )

    kind: Literal["feed"] = Field(description='Selects an RSS or Atom feed: "feed".')
    url: str | None = Field(
        default=None, description="Address of the feed; give either url or path."
    )
    path: RelPath | None = Field(
        default=None,
        description="Local feed file, relative to the config file; give either url or path.",
    )
    timeout: float = Field(
        default=15.0,
        gt=0,
        description="Seconds allowed for the whole fetch: connecting, every redirect and the body.",
    )
    max_items: int = Field(
        default=500,
        gt=0,
        description="Most entries read from one fetch; the newest are kept.",
    )
    translation_key: Literal["guid", "link", "none"] = Field(
        default="none",
        description='How translations in several feeds are matched: "guid" by the part '
        'of the guid after "#" (else its last path segment), "link" by the entry\'s '
        'link, "none" not at all.',
    )

    @model_validator(mode="after")
    def _one_location(self) -> FeedSourceConfig:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of 'url' or 'path'")
        return self


class FeedSource(Source[FeedSourceConfig]):
    """Entries of one RSS/Atom feed; a 304 answer yields ``not_modified`` and no items."""

    kind: ClassVar[str] = "feed"
    config_type: ClassVar[type[FeedSourceConfig]] = FeedSourceConfig

    @property
    def location(self) -> str:
        """The feed's URL (credentials masked) or file path, for messages."""
        return mask_url(self.config.url) if self.config.url else str(self.config.path)

    def fetch(self, state: SourceState) -> FetchResult:
        """Fetch (or read) and parse the feed."""
        if self.config.path is not None:
            try:
                data = self.config.path.read_bytes()
            except OSError as exc:
                raise SourceError(f"{self.config.path}: cannot read feed file: {exc}") from exc
            return self._parse(data, {}, etag=None, last_modified=None)

        assert self.config.url is not None
        headers: dict[str, str] = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        response = http_get(
            self.client,
            self.config.url,
            timeout=self.config.timeout,
            headers=headers,
            allow_not_modified=True,
        )
        if response.status_code == 304:
            return FetchResult(
                items=[],
                etag=response.headers.get("etag", state.etag),
                last_modified=response.headers.get("last-modified", state.last_modified),
                not_modified=True,
            )
        # relative links in entries resolve against where the feed really came from
        response_headers = {"content-location": response.url}
        if "content-type" in response.headers:
            response_headers["content-type"] = response.headers["content-type"]
        return self._parse(
            response.content,
            response_headers,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )

    def _parse(
        self,
        data: bytes,
        response_headers: dict[str, str],
        *,
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult:
        # links inside entry HTML resolve later against the entry's own link, not the feed URL
        parsed = feedparser.parse(
            data, response_headers=response_headers, resolve_relative_uris=False
        )
        warnings: list[str] = []
        problem = parsed.get("bozo_exception")
        if not parsed.entries:
            if isinstance(problem, feedparser.NonXMLContentType) or (
                not parsed.version and not parsed.bozo
            ):
                raise SourceError(f"{self.location}: not an RSS or Atom feed")
            if parsed.bozo and not isinstance(problem, _HARMLESS_BOZO):
                raise SourceError(f"{self.location}: malformed feed: {problem}")
        elif parsed.bozo and not isinstance(problem, _HARMLESS_BOZO):
            warnings.append(
                f"{self.location}: feed is not well-formed ({problem}); "
                f"read {len(parsed.entries)} entries anyway"
            )
        feed_lang = parsed.feed.get("language") or None
        entries = list(parsed.entries)
        if len(entries) > self.config.max_items:
            warnings.append(
                f"{self.location}: feed has {len(entries)} entries; read the newest "
                f"{self.config.max_items} (max_items)"
            )
            entries = _newest(entries, self.config.max_items)
        items = [self._item(entry, feed_lang) for entry in entries]
        return FetchResult(items=items, etag=etag, last_modified=last_modified, warnings=warnings)

    def _item(self, entry: Any, feed_lang: str | None) -> SourceItem:
        link = entry.get("link") or None
        title = _plain_title(entry)
        content = entry.get("content") or []
        summary = entry.get("summary") or ""
        if content:
            body = "\n".join(part.get("value", "") for part in content)
            summary_html = summary if summary and summary != body else None
        else:
            body, summary_html = summary, None
        guid = entry.get("id") or link or _fallback_guid(title, body)
        return SourceItem(
            source=self.config.name,
            guid=guid,
            title=title,
            body_html=body,
            link=link,
            summary_html=summary_html,
            published=_entry_date(entry),
            lang=_entry_lang(entry, content) or feed_lang or self.config.lang,
            translation_key=self._translation_key(guid, link),
            tags=tuple(t["term"] for t in entry.get("tags", []) if t.get("term")),
            image=_entry_image(entry),
        )

    def _translation_key(self, guid: str, link: str | None) -> str | None:
        mode = self.config.translation_key
        if mode == "link":
            return link
        if mode == "guid":
            return guid_key(guid)
        return None


def guid_key(guid: str) -> str:
    """The part of a guid shared by its translations: after '#', else the last path segment."""
    if "#" in guid:
        return guid.rsplit("#", 1)[1] or guid
    path = urlsplit(guid).path if "://" in guid else guid
    segment = path.rstrip("/").rsplit("/", 1)[-1]
    return segment or guid


def _plain_title(entry: Any) -> str:
    detail = entry.get("title_detail") or {}
    title = str(entry.get("title", ""))
    if "html" in str(detail.get("type", "")) and title.strip():
        title = lxml.html.fragment_fromstring(title, create_parent="div").text_content()
    return " ".join(title.split())


def _entry_date(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value: time.struct_time | None = entry.get(key)
        if value is not None:
            # feedparser normalizes to UTC struct_time
            return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    return None


def _entry_lang(entry: Any, content: list[Any]) -> str | None:
    # <dc:language> on an RSS item
    if entry.get("language"):
        return str(entry["language"])
    for detail in (*content, entry.get("title_detail"), entry.get("summary_detail")):
        if detail and detail.get("language"):
            return str(detail["language"])
    return None


def _entry_image(entry: Any) -> str | None:
    for enclosure in entry.get("enclosures", []):
        if str(enclosure.get("type", "")).startswith("image/") and enclosure.get("href"):
            return str(enclosure["href"])
    for key in ("media_content", "media_thumbnail"):
        for media in entry.get(key, []):
            url = media.get("url")
            if url and (key == "media_thumbnail" or media.get("medium") == "image"):
                return str(url)
    return None


def _newest(entries: list[Any], limit: int) -> list[Any]:
    """The ``limit`` newest entries in feed order; undated ones count as oldest."""

    def age(i: int) -> tuple[float, int]:
        published = _entry_date(entries[i])
        return (published.timestamp() if published else float("-inf"), -i)

    dated = sorted(range(len(entries)), key=age, reverse=True)
    keep = set(dated[:limit])
    return [entry for i, entry in enumerate(entries) if i in keep]


def _fallback_guid(title: str, body: str) -> str:
    digest = hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:32]
    return f"sha256:{digest}"
