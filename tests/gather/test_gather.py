"""Sanitizing, the item store (SQLite and PostgreSQL) and gathering end to end."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fixtures.sources.httpserver import FIXTURES, Route, Server, fixture_bytes, serve

from newsletter.config import Settings
from newsletter.errors import ConfigError, StoreError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.run import SourceReport, content_hash, gather
from newsletter.gather.sanitize import clean_html, summarize
from newsletter.gather.sources import SourceState
from newsletter.store import Store
from newsletter.store.items import ItemRecord

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
RSS = "application/rss+xml; charset=utf-8"


# -- sanitizing -------------------------------------------------------------------------


def test_clean_html_removes_active_content() -> None:
    dirty = (
        '<p onclick="steal()" style="color:red">Hi <a href="javascript:alert(1)">js</a>'
        ' <a href="JaVaScRiPt:alert(1)">js2</a> <a href="data:text/html,x">data</a></p>'
        "<script>alert(1)</script><style>p{}</style><iframe src='https://e.example.com'>"
        "</iframe><form action='https://e.example.com'><input name='q'>Send</form>"
        '<img src="https://cluster.example.org/a.png" onerror="x()">'
    )
    clean = clean_html(dirty, "https://cluster.example.org/news/1")
    for bad in ("onclick", "style", "javascript", "JaVaScRiPt", "data:", "script", "alert"):
        assert bad not in clean
    for bad in ("iframe", "form", "input", "Send", "onerror"):
        assert bad not in clean
    assert '<img src="https://cluster.example.org/a.png">' in clean
    assert clean.startswith("<p>Hi <a rel=")


def test_clean_html_makes_relative_links_absolute() -> None:
    clean = clean_html(
        '<a href="/bg/x">a</a> <a href="y.html">b</a> <img src="../img/c.png">'
        ' <a href="mailto:info@cluster.example.org">m</a>',
        "https://cluster.example.org/bg/news/item",
    )
    assert 'href="https://cluster.example.org/bg/x"' in clean
    assert 'href="https://cluster.example.org/bg/news/y.html"' in clean
    assert 'src="https://cluster.example.org/bg/img/c.png"' in clean
    assert 'href="mailto:info@cluster.example.org"' in clean


def test_clean_html_drops_relative_links_without_base() -> None:
    assert clean_html('<a href="/x">a</a>', None) == '<a rel="noopener noreferrer">a</a>'
    assert "href" not in clean_html('<a href="/x">a</a>', "javascript:alert(1)")


def test_summarize_first_paragraphs_cut_at_word_with_ellipsis() -> None:
    body = (
        "<h2>Heading</h2><p>Short first &amp; <b>bold</b>.</p>"
        "<p>Second paragraph that is much longer than the remaining budget allows.</p>"
    )
    assert summarize(body, 40) == "Short first &amp; bold."
    long = summarize("<p>" + "word " * 100 + "</p>", 50)
    assert long.endswith("word…") and len(long) <= 50
    assert summarize("<p>&lt;script&gt;x</p>", 50) == "&lt;script&gt;x"
    assert summarize("", 50) == ""


# -- store ------------------------------------------------------------------------------


def _record(**overrides: Any) -> ItemRecord:
    base: dict[str, Any] = {
        "source": "news",
        "guid": "g1",
        "title": "Соларни покриви",
        "body_html": "<p>Текст</p>",
        "summary_html": "Текст",
        "link": "https://cluster.example.org/bg/news/1",
        "published_at": datetime(2026, 11, 16, 8, 0, tzinfo=UTC),
        "lang": "bg",
        "translation_key": "solar-roofs",
        "tags": ("solar",),
        "image": None,
    }
    base.update(overrides)
    base.setdefault("content_hash", content_hash(base["title"], base["body_html"]))
    return ItemRecord(**base)


def test_upsert_new_unchanged_updated(store: Store) -> None:
    items = store.items
    assert items.upsert(_record(), NOW) == "new"
    assert items.upsert(_record(), NOW + timedelta(hours=1)) == "unchanged"
    edited = _record(body_html="<p>Нов текст</p>", content_hash="", tags=("solar", "x"))
    edited = replace(edited, content_hash=content_hash(edited.title, edited.body_html))
    assert items.upsert(edited, NOW + timedelta(hours=2)) == "updated"
    assert items.count() == 1
    (item,) = items.list()
    assert item.body_html == "<p>Нов текст</p>" and item.tags == ("solar", "x")
    assert item.first_seen_at == NOW and item.updated_at == NOW + timedelta(hours=2)
    assert item.published_at == datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def test_dedup_by_link_rekeys_same_source(store: Store) -> None:
    store.items.upsert(_record(), NOW)
    assert store.items.upsert(_record(guid="g1-new", title="Ново заглавие"), NOW) == "updated"
    (item,) = store.items.list()
    assert (item.guid, item.title) == ("g1-new", "Ново заглавие")


def test_dedup_by_link_needs_same_language(store: Store) -> None:
    store.items.upsert(_record(), NOW)
    english = _record(guid="g1-en", lang="en", title="Solar roofs")
    assert store.items.upsert(english, NOW) == "new"
    assert store.items.count() == 2


def test_dedup_by_hash_and_other_source_is_left_alone(store: Store) -> None:
    store.items.upsert(_record(), NOW)
    copy = _record(source="mirror", guid="m1", link=None)
    assert store.items.upsert(copy, NOW) == "unchanged"
    other_link = _record(source="mirror", guid="m2", body_html="<p>Друг</p>")
    assert store.items.upsert(other_link, NOW) == "unchanged"  # same link, other source
    assert [i.source for i in store.items.list()] == ["news"]


def test_unknown_date_keeps_first_seen(store: Store) -> None:
    store.items.upsert(_record(published_at=None), NOW)
    later = NOW + timedelta(days=1)
    assert store.items.upsert(_record(published_at=None), later) == "unchanged"
    assert store.items.get(store.items.list()[0].id).published_at == NOW


def test_reads(store: Store) -> None:
    items = store.items
    for n in range(3):
        items.upsert(
            _record(
                guid=f"g{n}",
                link=f"https://cluster.example.org/n/{n}",
                title=f"T{n}",
                published_at=NOW - timedelta(days=n),
                source="a" if n < 2 else "b",
                translation_key="k" if n < 2 else None,
                lang="bg" if n else "en",
            ),
            NOW,
        )
    newest = items.list()
    assert [i.title for i in newest] == ["T0", "T1", "T2"]
    assert [i.title for i in items.list(since=NOW - timedelta(days=1))] == ["T0", "T1"]
    assert [i.title for i in items.list(sources=["b"])] == ["T2"]
    assert [i.title for i in items.list(limit=1)] == ["T0"]
    ids = [newest[2].id, newest[0].id]
    assert [i.title for i in items.get_many(ids)] == ["T2", "T0"]
    groups = items.by_translation_keys(["k", "missing"])
    assert list(groups) == ["k"] and {i.lang for i in groups["k"]} == {"bg", "en"}
    with pytest.raises(StoreError, match="9999"):
        items.get(9999)


def test_source_state(store: Store) -> None:
    items = store.items
    assert items.state("feed") == SourceState()
    items.record_gather(
        "feed", state=SourceState(etag='"1"', last_modified="x"), count=3, error=None, at=NOW
    )
    items.record_gather("feed", state=None, count=None, error="HTTP 500", at=NOW)
    assert items.state("feed") == SourceState(etag='"1"', last_modified="x")
    (status,) = items.states()
    assert (status.last_count, status.last_error, status.last_gathered_at) == (3, "HTTP 500", NOW)


# -- gathering --------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[Server]:
    with serve(
        {"/bg.xml": Route(fixture_bytes("feed_bg.xml"), content_type=RSS, etag='"v1"')}
    ) as srv:
        yield srv


@pytest.fixture
def news(tmp_path: Path) -> Path:
    folder = tmp_path / "news"
    shutil.copytree(FIXTURES / "news", folder)
    return folder


def _settings(make_config: Callable[..., Settings], *sources: dict[str, Any]) -> Settings:
    # the test servers are on 127.0.0.1: allow-list their origins, as an operator would
    origins = {"/".join(s["url"].split("/", 3)[:3]) for s in sources if "url" in s}
    return make_config(sources=list(sources), gather={"allow_private": sorted(origins)})


def test_gather_folder_and_feed(
    make_config: Callable[..., Settings], store: Store, server: Server, news: Path
) -> None:
    settings = _settings(
        make_config,
        {"kind": "folder", "name": "news", "path": str(news), "pattern": "*", "tags": ["local"]},
        {"kind": "feed", "name": "feed", "url": server.url("/bg.xml"), "translation_key": "guid"},
    )
    seen: list[SourceReport] = []
    with GuardedClient(settings.gather) as client:
        report = gather(settings, store, client=client, now=NOW, on_source=seen.append)
    assert [s.name for s in seen] == ["news", "feed"]
    assert (report.new, report.updated, report.failed) == (6, 0, [])
    assert len(report.sources[0].warnings) == 2  # bad date, broken front matter
    items = {i.guid: i for i in store.items.list()}
    feed_item = items["https://cluster.example.org/bg/news/solar-roofs"]
    assert feed_item.lang == "bg"  # bg-BG normalized to a configured locale
    assert "script" not in feed_item.body_html and "onclick" not in feed_item.body_html
    assert 'href="https://cluster.example.org/bg/projects/solar"' in feed_item.body_html
    assert feed_item.summary_html.startswith("Три училища получават")
    heat = items["2026-11-20-heat-pumps.md"]
    assert heat.lang == "bg"  # no lang anywhere: settings.locales.default
    assert heat.tags == ("local",)
    assert items["2026-11-16-solar-roofs.bg.md"].tags == ("solar", "schools", "local")

    # second run: the feed answers 304, the folder is unchanged
    again = gather(settings, store, now=NOW + timedelta(hours=1))
    assert (again.new, again.updated, again.unchanged) == (0, 0, 4)
    assert again.sources[1].not_modified
    assert server.hits("/bg.xml")[1]["if-none-match"] == '"v1"'


def test_edited_file_is_updated_not_duplicated(
    make_config: Callable[..., Settings], store: Store, news: Path
) -> None:
    settings = _settings(make_config, {"kind": "folder", "name": "news", "path": str(news)})
    gather(settings, store, now=NOW)
    before = store.items.count()
    path = news / "2026-11-16-solar-roofs.en.md"
    path.write_text(path.read_text().replace("three schools", "four schools"), encoding="utf-8")
    report = gather(settings, store, now=NOW + timedelta(days=1))
    assert (report.new, report.updated) == (0, 1)
    assert store.items.count() == before
    edited = next(i for i in store.items.list() if i.guid == path.name)
    assert "four schools" in edited.body_html and edited.first_seen_at == NOW


def test_failing_source_is_reported_and_leaves_stored_items_untouched(
    make_config: Callable[..., Settings],
    store: Store,
    server: Server,
    news: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = {"kind": "feed", "name": "feed", "url": server.url("/bg.xml")}
    folder = {"kind": "folder", "name": "news", "path": str(news)}
    gather(_settings(make_config, feed, folder), store, now=NOW)
    stored = {i.id: i for i in store.items.list()}

    server.routes["/bg.xml"] = Route(b"boom", status=500)
    new_file = news / "2026-11-22-new.md"
    new_file.write_text("---\ntitle: Ново\ndate: 2026-11-22\n---\nТекст\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="newsletter.gather.run"):
        report = gather(_settings(make_config, feed, folder), store, now=NOW + timedelta(days=1))
    (failed,) = report.failed
    assert failed.name == "feed" and "HTTP 500" in (failed.error or "")
    assert server.url("/bg.xml") in (failed.error or "")
    assert report.sources[1].new == 1  # the folder still gathered
    assert "feed" in caplog.text and "HTTP 500" in caplog.text
    after = {i.id: i for i in store.items.list()}
    assert all(after[item_id] == item for item_id, item in stored.items())
    status = {s.source: s for s in store.items.states()}
    assert status["feed"].last_error is not None and status["feed"].last_count == 2
    assert store.items.state("feed").etag == '"v1"'
    assert status["news"].last_error is None


def test_malformed_and_slow_feeds_fail_alone(
    make_config: Callable[..., Settings], store: Store, server: Server
) -> None:
    server.routes["/broken.xml"] = Route(fixture_bytes("malformed.xml"), content_type=RSS)
    server.routes["/slow.xml"] = Route(hang=True)
    settings = _settings(
        make_config,
        {"kind": "feed", "name": "broken", "url": server.url("/broken.xml")},
        {"kind": "feed", "name": "slow", "url": server.url("/slow.xml"), "timeout": 0.05},
        {"kind": "feed", "name": "good", "url": server.url("/bg.xml")},
    )
    report = gather(settings, store, now=NOW)
    assert [s.name for s in report.failed] == ["broken", "slow"]
    assert "malformed" in (report.failed[0].error or "")
    assert "timed out" in (report.failed[1].error or "")
    assert report.new == 2 and store.items.count() == 2


def test_only_and_disabled(
    make_config: Callable[..., Settings], store: Store, server: Server, news: Path
) -> None:
    settings = _settings(
        make_config,
        {"kind": "folder", "name": "news", "path": str(news), "enabled": False},
        {"kind": "feed", "name": "feed", "url": server.url("/bg.xml")},
    )
    assert [s.name for s in gather(settings, store, now=NOW).sources] == ["feed"]
    assert [s.name for s in gather(settings, store, only=["news"], now=NOW).sources] == ["news"]
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        gather(settings, store, only=["nope"], now=NOW)


def test_local_feed_file_and_duplicates_across_sources(
    make_config: Callable[..., Settings], store: Store, server: Server
) -> None:
    settings = _settings(
        make_config,
        {"kind": "feed", "name": "remote", "url": server.url("/bg.xml")},
        {"kind": "feed", "name": "local", "path": str(FIXTURES / "feed_bg.xml")},
    )
    report = gather(settings, store, now=NOW)
    assert [(s.new, s.unchanged) for s in report.sources] == [(2, 0), (0, 2)]
    assert {i.source for i in store.items.list()} == {"remote"}


def test_a_stop_lets_the_source_in_progress_finish_and_leaves_the_rest(
    make_config: Callable[..., Settings], store: Store, server: Server, news: Path
) -> None:
    settings = _settings(
        make_config,
        {"kind": "feed", "name": "feed", "url": server.url("/bg.xml")},
        {"kind": "folder", "name": "news", "path": str(news)},
        {"kind": "feed", "name": "local", "path": str(FIXTURES / "feed_en.atom")},
    )
    stop = threading.Event()
    # the stop comes while the feed's answer is on its way (what SIGTERM does mid-source)
    with GuardedClient(settings.gather, event_hooks={"response": [lambda _: stop.set()]}) as client:
        report = gather(settings, store, client=client, now=NOW, stop=stop)
    assert [s.name for s in report.sources] == ["feed"]
    assert report.stopped and report.left == ["news", "local"]
    # the feed's items and its state (ETag) are stored; nothing of the others
    assert report.new == 2 and {i.source for i in store.items.list()} == {"feed"}
    assert [s.source for s in store.items.states()] == ["feed"]
    assert store.items.state("feed").etag == '"v1"'
    # the next gather does them all
    again = gather(settings, store, now=NOW + timedelta(hours=1))
    assert not again.stopped and [s.name for s in again.sources] == ["feed", "news", "local"]
    assert again.sources[0].not_modified and again.sources[1].new > 0
