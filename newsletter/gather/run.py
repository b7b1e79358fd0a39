"""Gather: run the sources, sanitize what they return, dedup and store it.

One failing source is reported (name and a one-line reason) and skipped; the others still
gather, and nothing a failing source stored before is touched, because a source's items
are only written after its whole fetch succeeded.

A ``stop`` event (set from another thread, e.g. the scheduler's on SIGTERM) is looked at
between sources: the source in progress finishes and is stored, the rest are left for the
next gather and named in the report.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from newsletter.config import Settings
from newsletter.errors import ConfigError, NewsletterError
from newsletter.gather.langdetect import LanguageDetector, LazyLanguageDetector
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

    Sources are fetched concurrently: at most ``[gather] concurrency`` at once and at most
    ``[gather] per_host`` of them (and of all requests) to one host, so a slow host holds
    only its own sources. Results are stored, and ``on_source`` called, in configuration
    order, one transaction per source, so which source owns a story found twice is the
    same as when gathering one source after another.

    Once ``stop`` is set no further source starts; the source next in order is finished
    and stored, and the others are listed in :attr:`GatherReport.left` (fetches already
    under way are let finish, and their results dropped).
    """
    configs = _selected(settings, only)
    now = now or datetime.now(UTC)
    own_client = client is None
    http = client if client is not None else default_client(settings.gather)
    report = GatherReport()
    detector = LazyLanguageDetector(settings.locales.available) if settings.locales.detect else None
    states = store.items.states_of([c.name for c in configs])
    fetcher = _Fetcher(settings, configs, states, http, detector)
    try:
        for n, (config, fetched) in enumerate(fetcher.results(stop)):
            if fetched is None:  # stopped before this source was stored
                report.left = [c.name for c in configs[n:]]
                log.info("stop requested: not gathered: %s", ", ".join(report.left))
                break
            source_report = _store_one(store, config, fetched, now)
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


@dataclass
class _Fetched:
    """What fetching one source gave: its result and prepared records, or why it failed."""

    result: FetchResult | None = None
    error: str | None = None
    records: list[ItemRecord] = field(default_factory=list)
    #: a bug while preparing the items: raised again by the gathering thread, as before
    crash: BaseException | None = None


def _host(config: Any) -> str | None:
    url = getattr(config, "url", None)
    if not url:
        return None
    try:
        return httpx.URL(url).host.lower() or None
    except httpx.InvalidURL:
        return None


class _Fetcher:
    """Fetches sources concurrently and hands them back in configuration order.

    A source starts when a worker is free and its host has fewer than ``per_host`` of
    its sources running (the guarded client also bounds every request per host).
    """

    def __init__(
        self,
        settings: Settings,
        configs: list[Any],
        states: dict[str, SourceState],
        client: GuardedClient,
        detector: LanguageDetector | None,
    ) -> None:
        self.settings = settings
        self.configs = configs
        self.states = states
        self.client = client
        self.detector = detector
        self.hosts = [_host(c) for c in configs]
        self.pending = list(range(len(configs)))
        self.running: dict[concurrent.futures.Future[_Fetched], int] = {}
        self.per_host: Counter[str] = Counter()
        self.done: dict[int, _Fetched] = {}

    def results(self, stop: threading.Event | None) -> Iterator[tuple[Any, _Fetched | None]]:
        """Each source with its result, in order; ``None`` once a stop came (nothing more
        is to be stored)."""
        configs = self.configs
        if stop is not None and stop.is_set():
            if configs:
                yield configs[0], None
            return
        workers = max(1, min(self.settings.gather.concurrency, len(configs)))
        with concurrent.futures.ThreadPoolExecutor(workers, "nl-gather") as pool:
            try:
                for n, config in enumerate(configs):
                    while n not in self.done:
                        if stop is None or not stop.is_set():
                            self._start(pool)
                        self._collect()
                    yield config, self.done.pop(n)
                    if stop is not None and stop.is_set() and n + 1 < len(configs):
                        yield configs[n + 1], None
                        return
            finally:
                # sources not started yet are dropped; those under way end by their deadline
                pool.shutdown(wait=True, cancel_futures=True)

    def _start(self, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        """Start pending sources, in order, while workers and their hosts have room."""
        policy = self.settings.gather
        for i in list(self.pending):
            if len(self.running) >= policy.concurrency:
                return
            host = self.hosts[i]
            if host is not None and self.per_host[host] >= policy.per_host:
                continue
            self.pending.remove(i)
            if host is not None:
                self.per_host[host] += 1
            config = self.configs[i]
            state = self.states.get(config.name, SourceState())
            future = pool.submit(
                _fetch_one, self.settings, config, self.client, state, self.detector
            )
            self.running[future] = i

    def _collect(self) -> None:
        """Wait for at least one running source to finish and keep its result."""
        finished, _ = concurrent.futures.wait(
            self.running, return_when=concurrent.futures.FIRST_COMPLETED
        )
        for future in finished:
            i = self.running.pop(future)
            host = self.hosts[i]
            if host is not None:
                self.per_host[host] -= 1
            self.done[i] = future.result()


def _fetch_one(
    settings: Settings,
    config: Any,
    client: GuardedClient,
    state: SourceState,
    detector: LanguageDetector | None,
) -> _Fetched:
    """Fetch one source and prepare its items (in a worker thread); never raises."""
    try:
        with build_source(config, client) as source:
            fetched = _Fetched(result=source.fetch(state))
    except NewsletterError as exc:
        return _Fetched(error=str(exc))
    except Exception as exc:  # a parser bug in one source must not stop the others
        log.exception("source %r crashed", config.name)
        return _Fetched(error=f"unexpected {type(exc).__name__}: {exc}")
    assert fetched.result is not None
    if not fetched.result.not_modified:
        try:
            fetched.records = [
                prepare(settings, config, item, detector) for item in fetched.result.items
            ]
        except Exception as exc:
            fetched.crash = exc
    return fetched


def _selected(settings: Settings, only: Sequence[str] | None) -> list[Any]:
    if not only:
        return [s for s in settings.sources if s.enabled]
    by_name = {s.name: s for s in settings.sources}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none configured"
        raise ConfigError(f"unknown source {unknown[0]!r} (known: {known})")
    return [by_name[name] for name in dict.fromkeys(only)]


def _store_one(store: Store, config: Any, fetched: _Fetched, now: datetime) -> SourceReport:
    report = SourceReport(name=config.name, kind=config.kind)
    if fetched.result is None:
        return _failed(store, report, fetched.error or "failed", now)
    result = fetched.result

    report.warnings = [mask_text(" ".join(w.split())) for w in result.warnings]
    for warning in report.warnings:
        log.warning("source %r: %s", config.name, warning)
    records: list[ItemRecord] = []
    if result.not_modified:
        report.not_modified = True
        log.info("source %r: not modified", config.name)
    else:
        if fetched.crash is not None:
            raise fetched.crash
        records = _dedup(fetched.records, config.name, report)
    outcomes = store.items.store_gathered(
        config.name,
        records,
        now,
        state=SourceState(etag=result.etag, last_modified=result.last_modified),
        count=None if result.not_modified else len(result.items),
    )
    for outcome in outcomes:
        setattr(report, outcome, getattr(report, outcome) + 1)
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
