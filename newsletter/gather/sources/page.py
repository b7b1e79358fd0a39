"""Page source: an HTML listing page, then each linked article page, by CSS selectors.

The listing must yield links (a selector that matches nothing is an error: the site has
changed). Each article is fetched on its own; one article that fails is a warning and is
skipped, not the whole source. Translations are found through the language switch links
(``link[rel=alternate][hreflang]`` or ``a[hreflang]``): every variant of a story gets the
smallest URL of the set {itself, its alternates} as translation key, which both pages agree
on when they point at each other.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import ClassVar, Literal
from urllib.parse import urldefrag, urljoin

import lxml.html
from cssselect import SelectorError
from lxml import etree
from pydantic import ConfigDict, Field

from newsletter.config import SourceBase
from newsletter.errors import SourceError
from newsletter.gather.sources.base import (
    DEFAULT_TZ,
    FetchResult,
    Source,
    SourceState,
    http_get,
    parse_date,
)
from newsletter.models import SourceItem
from newsletter.redact import mask_url

_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class PageSourceConfig(SourceBase):
    """``kind = "page"``: an HTML listing page, item links by CSS selector, then each
    article page."""

    #: the keys of a smallest working table besides name and kind (docs and tests use it)
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"url": "https://cluster.example.org/news", "item_links": "ul.news a"}]
        }
    )

    kind: Literal["page"] = Field(
        description='Selects a listing page and its linked articles: "page".'
    )
    url: str = Field(description="Address of the listing page.")
    item_links: str = Field(
        description="CSS selector of the links to the articles on the listing page."
    )
    title: str = Field(default="h1", description="CSS selector of an article's title.")
    body: str = Field(default="article", description="CSS selector of an article's body.")
    date: str | None = Field(
        default=None,
        description="CSS selector of an article's date (its datetime or content "
        "attribute, else its text); unset means articles have no date.",
    )
    date_format: str | None = Field(
        default=None,
        description='strptime format of the date, e.g. "%d.%m.%Y"; unset reads ISO 8601 '
        'and dates like "15.10.2012г.".',
    )
    image: str | None = Field(
        default=None,
        description="CSS selector of an article's picture (its src, content or href); "
        "unset means no picture.",
    )
    timeout: float = Field(
        default=15.0,
        gt=0,
        description="Seconds allowed for each fetch (the listing, each article), "
        "redirects and body included.",
    )
    max_items: int = Field(
        default=30, gt=0, description="Most articles read from the listing per gather."
    )


class PageSource(Source[PageSourceConfig]):
    """Articles linked from one listing page, read with the configured selectors."""

    kind: ClassVar[str] = "page"
    config_type: ClassVar[type[PageSourceConfig]] = PageSourceConfig

    def fetch(self, state: SourceState) -> FetchResult:
        """Fetch the listing, then up to ``max_items`` articles."""
        cfg = self.config
        listing_url, listing = self._get(cfg.url)
        links = self._links(listing, listing_url)
        items: list[SourceItem] = []
        warnings: list[str] = []
        for url in links[: cfg.max_items]:
            try:
                items.append(self._article(url))
            except SourceError as exc:
                warnings.append(f"skipped article: {exc}")
        if links and not items:
            raise SourceError(
                f"{mask_url(cfg.url)}: none of {len(links)} linked articles could be read"
                + (f" ({warnings[0]})" if warnings else "")
            )
        return FetchResult(items=items, warnings=warnings)

    def _get(self, url: str) -> tuple[str, lxml.html.HtmlElement]:
        response = http_get(self.client, url, timeout=self.config.timeout)
        final_url = response.url
        try:
            doc = lxml.html.document_fromstring(
                response.content,
                parser=lxml.html.HTMLParser(encoding=_charset(response.headers, response.content)),
                base_url=final_url,
            )
        except (etree.ParserError, ValueError, LookupError) as exc:
            raise SourceError(f"{mask_url(url)}: not a readable HTML page: {exc}") from exc
        doc.make_links_absolute(final_url, resolve_base_href=True, handle_failures="discard")
        return final_url, doc

    def _select(self, doc: lxml.html.HtmlElement, selector: str, url: str) -> list[etree._Element]:
        try:
            return list(doc.cssselect(selector))
        except SelectorError as exc:
            raise SourceError(
                f"source {self.config.name!r}: bad CSS selector {selector!r}"
            ) from exc

    def _links(self, doc: lxml.html.HtmlElement, url: str) -> list[str]:
        selector = self.config.item_links
        found: list[str] = []
        for el in self._select(doc, selector, url):
            anchor = el if el.get("href") else next(iter(el.iterfind(".//a[@href]")), None)
            href = anchor.get("href") if anchor is not None else None
            if href and href.startswith(("http://", "https://")):
                found.append(urldefrag(href)[0])
        if not found:
            raise SourceError(f"selector {selector!r} matched no links on {mask_url(url)}")
        return list(dict.fromkeys(found))

    def _article(self, url: str) -> SourceItem:
        cfg = self.config
        final_url, doc = self._get(url)
        title_el = next(iter(self._select(doc, cfg.title, url)), None)
        if title_el is None:
            title_el = doc.find(".//title")
        title = " ".join((title_el.text_content() if title_el is not None else "").split())
        if not title:
            raise SourceError(f"{mask_url(url)}: title selector {cfg.title!r} matched nothing")
        body_el = next(iter(self._select(doc, cfg.body, url)), None)
        if body_el is None:
            raise SourceError(f"{mask_url(url)}: body selector {cfg.body!r} matched nothing")
        if title_el is not None and _is_inside(title_el, body_el):
            # the digest shows the title itself; keep it out of the body
            title_el.drop_tree()
        published = self._date(doc, body_el, url)
        lang = doc.get("lang") or doc.get("{http://www.w3.org/XML/1998/namespace}lang")
        return SourceItem(
            source=cfg.name,
            guid=final_url,
            title=title,
            body_html=_inner_html(body_el),
            link=final_url,
            published=published,
            lang=lang.strip() if lang and lang.strip() else cfg.lang,
            translation_key=_translation_key(doc, final_url),
            image=self._image(doc, url),
        )

    def _date(
        self, doc: lxml.html.HtmlElement, body_el: lxml.html.HtmlElement, url: str
    ) -> datetime | None:
        cfg = self.config
        if cfg.date is None:
            return None
        el = next(iter(self._select(doc, cfg.date, url)), None)
        if el is None:
            raise SourceError(f"{mask_url(url)}: date selector {cfg.date!r} matched nothing")
        raw = (el.get("datetime") or el.get("content") or el.text_content()).strip()
        if _is_inside(el, body_el):
            # the digest shows the date itself; keep it out of the body
            el.drop_tree()
        try:
            if cfg.date_format:
                parsed = datetime.strptime(raw, cfg.date_format)
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=DEFAULT_TZ)
            return parse_date(raw)
        except ValueError as exc:
            raise SourceError(f"{mask_url(url)}: cannot read date {raw!r}: {exc}") from exc

    def _image(self, doc: lxml.html.HtmlElement, url: str) -> str | None:
        if self.config.image is None:
            return None
        el = next(iter(self._select(doc, self.config.image, url)), None)
        if el is None:
            return None
        value = el.get("src") or el.get("content") or el.get("href")
        return urljoin(url, value) if value else None


def _charset(headers: object, content: bytes) -> str:
    """The page's encoding: HTTP header, then ``<meta charset>``, else UTF-8."""
    content_type = str(getattr(headers, "get", lambda *_: "")("content-type", "") or "")
    match = re.search(r"charset=([\w.:-]+)", content_type, re.IGNORECASE)
    if match:
        return match.group(1)
    meta = _META_CHARSET.search(content[:4096])
    return meta.group(1).decode("ascii") if meta else "utf-8"


def _is_inside(el: etree._Element, container: etree._Element) -> bool:
    return any(ancestor is container for ancestor in el.iterancestors())


def _inner_html(el: lxml.html.HtmlElement) -> str:
    parts = [html.escape(el.text or "", quote=False)]
    parts.extend(lxml.html.tostring(child, encoding="unicode") for child in el)
    return "".join(parts).strip()


def _translation_key(doc: lxml.html.HtmlElement, url: str) -> str | None:
    alternates = {
        urldefrag(el.get("href", ""))[0]
        for el in doc.cssselect("link[rel~=alternate][hreflang], a[hreflang]")
        if el.get("href", "").startswith(("http://", "https://"))
        and el.get("hreflang", "").lower() != "x-default"
    }
    if not alternates - {url}:
        return None
    return min(alternates | {url})
