"""Gather: run the sources, sanitize what they return, dedup and store it.

One failing source is reported (name and a one-line reason) and skipped; the others still
gather, and nothing a failing source stored before is touched, because a source's items
are only written after its whole fetch succeeded.

A ``stop`` event (set from another thread, e.g. the scheduler's on SIGTERM) is looked at
between sources: the source in progress finishes and is stored, the rest are left for the
next gather and named in the report.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from newsletter.config import Settings
from newsletter.errors import ConfigError, NewsletterError
from newsletter.gather.langdetect import LanguageDetector
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.sanitize import clean_html, clean_url, http_base, summarize
from newsletter.gather.sources import build_source
from newsletter.gather.sources.base import FetchResult, SourceState, default_client
from newsletter.models import SourceItem
from newsletter.redact import mask_text, scrub_content, url_secrets
from newsletter.store import Store
from newsletter.store.items import ItemRecord
from newsletter.textclean import clean_multiline, clean_text, visible

log = logging.getLogger("newsletter.gather.run")


@dataclass
class SourceReport:
    """What gathering one source did."""

    name: str
    kind: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    #: one line saying why the source failed; ``None`` when it worked
    error: str | None = None
    #: the server answered 304: nothing changed since the last gather
    not_modified: bool = False
    #: parts that were skipped while the rest loaded (a bad file, a failing article)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the source was gathered."""
        return self.error is None


@dataclass
class GatherReport:
    """Per-source reports and their totals."""

    sources: list[SourceReport] = field(default_factory=list)
    #: sources not gathered because a stop was asked for
    left: list[str] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        """True when a stop ended the gather before every source was done."""
        return bool(self.left)

    @property
    def new(self) -> int:
        """Items stored for the first time."""
        return sum(s.new for s in self.sources)

    @property
    def updated(self) -> int:
        """Stored items that changed at their source."""
        return sum(s.updated for s in self.sources)

    @property
    def unchanged(self) -> int:
        """Items seen again without changes (or duplicates of stored ones)."""
        return sum(s.unchanged for s in self.sources)

    @property
    def failed(self) -> list[SourceReport]:
        """Sources that could not be gathered."""
        return [s for s in self.sources if s.error is not None]

    @property
    def ok(self) -> bool:
        """True when every source was gathered."""
        return not self.failed


def gather(
    settings: Settings,
    store: Store,
    *,
    client: GuardedClient | None = None,
    only: Sequence[str] | None = None,
    now: datetime | None = None,
    on_source: Callable[[SourceReport], None] | None = None,
    stop: threading.Event | None = None,
) -> GatherReport:
    """Gather every enabled source (or only the named ones, enabled or not).

    Once ``stop`` is set no further source starts; the one in progress is finished and
    stored, and the others are listed in :attr:`GatherReport.left`.
    """
    configs = _selected(settings, only)
    now = now or datetime.now(UTC)
    own_client = client is None
    http = client if client is not None else default_client(settings.gather)
    report = GatherReport()
    detector = LanguageDetector(settings.locales.available) if settings.locales.detect else None
    try:
        for n, config in enumerate(configs):
            if stop is not None and stop.is_set():
                report.left = [c.name for c in configs[n:]]
                log.info("stop requested: not gathered: %s", ", ".join(report.left))
                break
            source_report = _gather_one(settings, store, config, http, now, detector)
            report.sources.append(source_report)
            if on_source is not None:
                on_source(source_report)
    finally:
        if own_client:
            http.close()
    log.info(
        "gathered %d sources: %d new, %d updated, %d unchanged, %d failed",
        len(report.sources),
        report.new,
        report.updated,
        report.unchanged,
        len(report.failed),
    )
    return report


def _selected(settings: Settings, only: Sequence[str] | None) -> list[Any]:
    if not only:
        return [s for s in settings.sources if s.enabled]
    by_name = {s.name: s for s in settings.sources}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none configured"
        raise ConfigError(f"unknown source {unknown[0]!r} (known: {known})")
    return [by_name[name] for name in dict.fromkeys(only)]


def _gather_one(
    settings: Settings,
    store: Store,
    config: Any,
    client: GuardedClient,
    now: datetime,
    detector: LanguageDetector | None,
) -> SourceReport:
    report = SourceReport(name=config.name, kind=config.kind)
    state = store.items.state(config.name)
    try:
        with build_source(config, client) as source:
            result: FetchResult = source.fetch(state)
    except NewsletterError as exc:
        return _failed(store, report, str(exc), now)
    except Exception as exc:  # a parser bug in one source must not stop the others
        log.exception("source %r crashed", config.name)
        return _failed(store, report, f"unexpected {type(exc).__name__}: {exc}", now)

    report.warnings = [mask_text(" ".join(w.split())) for w in result.warnings]
    for warning in report.warnings:
        log.warning("source %r: %s", config.name, warning)
    if result.not_modified:
        report.not_modified = True
        log.info("source %r: not modified", config.name)
    else:
        records = _dedup(
            [prepare(settings, config, item, detector) for item in result.items],
            config.name,
            report,
        )
        for record in records:
            outcome = store.items.upsert(record, now)
            setattr(report, outcome, getattr(report, outcome) + 1)
    store.items.record_gather(
        config.name,
        state=SourceState(etag=result.etag, last_modified=result.last_modified),
        count=None if result.not_modified else len(result.items),
        error=None,
        at=now,
    )
    log.info(
        "source %r: %d new, %d updated, %d unchanged",
        config.name,
        report.new,
        report.updated,
        report.unchanged,
    )
    return report


def _failed(store: Store, report: SourceReport, reason: str, now: datetime) -> SourceReport:
    # a server's answer can be in the reason: one line, no credentials, nothing a terminal
    # would act on
    report.error = clean_text(mask_text(" ".join(reason.split())))
    log.warning("source %r skipped: %s", report.name, report.error)
    store.items.record_gather(report.name, state=None, count=None, error=report.error, at=now)
    return report


def _dedup(records: list[ItemRecord], name: str, report: SourceReport) -> list[ItemRecord]:
    """Drop repeats inside one fetch, so two entries never fight over one stored row."""
    seen: set[tuple[str, ...]] = set()
    out: list[ItemRecord] = []
    for record in records:
        keys: set[tuple[str, ...]] = {("guid", record.guid), ("hash", record.content_hash)}
        if record.link:
            keys.add(("link", record.link, record.lang))
        if keys & seen:
            report.warnings.append(f"duplicate entry {record.guid!r} in one fetch, ignored")
            log.warning("source %r: duplicate entry %r ignored", name, record.guid)
            continue
        seen |= keys
        out.append(record)
    return out


def prepare(
    settings: Settings,
    config: Any,
    item: SourceItem,
    detector: LanguageDetector | None = None,
) -> ItemRecord:
    """Sanitize one source item and fill the fields a stored item must have.

    The language is the declared one; else, with a ``detector``, the detected one when
    confident enough; else the source's configured ``lang``, else the default locale.
    """
    # links resolved against the source's own URL carry its credentials (user:pw@, an
    # api_key): content is mailed to everyone, so none of it may hold them
    secrets = url_secrets(getattr(config, "url", None))

    def scrub(text: str | None) -> str | None:
        return None if text is None else scrub_content(text, secrets)

    link = scrub(clean_url(item.link))
    base = http_base(link)
    body = scrub_content(clean_html(item.body_html, base), secrets)
    summary = summarize(
        clean_multiline(scrub(item.summary_html)) or body, settings.render.summary_chars
    )
    # every text field of a feed or page may carry escapes or controls (ESC[2J, OSC 8, NUL)
    title = clean_text(item.title)
    tags = tuple(dict.fromkeys(t for t in map(clean_text, (*item.tags, *config.tags)) if t))
    key = clean_text(scrub(item.translation_key)) if item.translation_key else None
    return ItemRecord(
        source=item.source,
        # shown, not cleaned: two guids must not become one (credentials aside)
        guid=visible(scrub_content(item.guid, secrets)),
        title=title,
        body_html=body,
        summary_html=summary,
        link=link,
        published_at=item.published,
        lang=normalize_lang(
            item.lang
            or _detected(settings, detector, item.guid, title, body)
            or config.lang
            or settings.locales.default,
            settings,
        ),
        translation_key=key or None,
        tags=tags,
        image=scrub(clean_url(item.image, base)),
        content_hash=content_hash(title, body),
    )


def _detected(
    settings: Settings,
    detector: LanguageDetector | None,
    guid: str,
    title: str,
    body_html: str,
) -> str | None:
    """The detected language of an undeclared item, or ``None`` when unsure or off."""
    if detector is None:
        return None
    found = detector.detect(f"{title}\n{body_html}")
    if found is None:
        return None
    lang, confidence = found
    if confidence < settings.locales.detect_min_confidence:
        log.debug("item %r: detected %s at %.2f, below threshold; not used", guid, lang, confidence)
        return None
    return lang


def content_hash(title: str, body_html: str) -> str:
    """sha256 of the title and sanitized body: what "the same content" means for dedup."""
    return hashlib.sha256(f"{title}\n{body_html}".encode()).hexdigest()


def normalize_lang(lang: str, settings: Settings) -> str:
    """``bg-BG`` -> ``bg`` unless the full tag is itself a configured locale."""
    tag = clean_text(lang).replace("_", "-")
    if tag in settings.locales.available:
        return tag
    return tag.split("-", 1)[0].lower()
