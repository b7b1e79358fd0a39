"""Feed source against a real HTTP server on 127.0.0.1: parsing, 304, errors, timeouts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures.sources.httpserver import FIXTURES, Route, Server, allow, fixture_bytes, serve

from newsletter.config import Gather
from newsletter.errors import SourceError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.sources import FeedSource, FeedSourceConfig, SourceState, build_source
from newsletter.gather.sources.feed import guid_key

RSS = "application/rss+xml; charset=utf-8"


@pytest.fixture
def server() -> Iterator[Server]:
    routes = {
        "/bg.xml": Route(fixture_bytes("feed_bg.xml"), content_type=RSS, etag='"bg-1"'),
        "/en.atom": Route(
            fixture_bytes("feed_en.atom"),
            content_type="application/atom+xml",
            last_modified="Mon, 16 Nov 2026 08:00:00 GMT",
        ),
        "/broken.xml": Route(fixture_bytes("malformed.xml"), content_type=RSS),
        "/error.xml": Route(b"oops", status=500, content_type="text/plain"),
        "/slow.xml": Route(hang=True),
        "/page.html": Route(b"<html><body><p>not a feed</p></body></html>"),
    }
    with serve(routes) as srv:
        yield srv


def _feed(url: str, **extra: object) -> FeedSource:
    cfg = FeedSourceConfig.model_validate({"kind": "feed", "name": "feed", "url": url, **extra})
    # the test server is on 127.0.0.1: only reachable because it is allow-listed
    policy = Gather(allow_private=[url.split("/", 3)[0] + "//" + url.split("/", 3)[2]])
    source = build_source(cfg, policy=policy)
    assert isinstance(source, FeedSource)
    return source


def test_rss_items_fields(server: Server) -> None:
    with _feed(server.url("/bg.xml"), translation_key="guid") as source:
        result = source.fetch(SourceState())
    assert result.etag == '"bg-1"' and not result.not_modified
    first, second = result.items
    assert first.guid == "https://cluster.example.org/bg/news/solar-roofs"
    assert first.link == "https://cluster.example.org/bg/news/solar-roofs"
    assert first.title == "Соларни покриви за три училища"
    assert first.published == datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    assert first.lang == "bg-BG"
    assert first.tags == ("solar",)
    assert first.image == "https://cluster.example.org/img/roof.jpg"
    assert first.translation_key == "solar-roofs"
    # relative links are left for gather to resolve against the item's own link
    assert 'href="/bg/projects/solar"' in first.body_html
    assert second.translation_key == "heat-pumps"


def test_atom_entry_language_and_link_translation_key(server: Server) -> None:
    with _feed(server.url("/en.atom"), translation_key="link", lang="de") as source:
        result = source.fetch(SourceState())
    (item,) = result.items
    assert item.lang == "en"  # from xml:lang, not the config's fallback
    assert item.translation_key == "https://cluster.example.org/en/news/solar-roofs"
    assert result.last_modified == "Mon, 16 Nov 2026 08:00:00 GMT"


def test_config_lang_when_feed_has_none(server: Server) -> None:
    server.routes["/nolang.xml"] = Route(
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
        b"<item><title>T</title><guid>g1</guid><description>d</description></item>"
        b'<item xmlns:dc="http://purl.org/dc/elements/1.1/"><title>U</title><guid>g2</guid>'
        b"<dc:language>tr</dc:language><description>d</description></item>"
        b"</channel></rss>",
        content_type=RSS,
    )
    with _feed(server.url("/nolang.xml"), lang="ro") as source:
        item, turkish = source.fetch(SourceState()).items
    assert turkish.lang == "tr"  # <dc:language> on the item wins
    assert item.lang == "ro"
    assert item.translation_key is None
    assert item.published is None


def test_etag_gives_not_modified(server: Server) -> None:
    with _feed(server.url("/bg.xml")) as source:
        first = source.fetch(SourceState())
        second = source.fetch(SourceState(etag=first.etag, last_modified=first.last_modified))
    assert second.not_modified and second.items == []
    assert second.etag == '"bg-1"'
    assert server.hits("/bg.xml")[1]["if-none-match"] == '"bg-1"'
    assert "if-none-match" not in server.hits("/bg.xml")[0]


def test_changed_etag_gives_items_again(server: Server) -> None:
    server.routes["/bg.xml"].etag = '"bg-2"'
    with _feed(server.url("/bg.xml")) as source:
        result = source.fetch(SourceState(etag='"bg-1"'))
    assert not result.not_modified and len(result.items) == 2
    assert result.etag == '"bg-2"'


def test_last_modified_gives_not_modified(server: Server) -> None:
    with _feed(server.url("/en.atom")) as source:
        result = source.fetch(SourceState(last_modified="Mon, 16 Nov 2026 08:00:00 GMT"))
    assert result.not_modified
    assert server.hits("/en.atom")[0]["if-modified-since"] == "Mon, 16 Nov 2026 08:00:00 GMT"


def test_http_500_names_url(server: Server) -> None:
    url = server.url("/error.xml")
    with _feed(url) as source, pytest.raises(SourceError, match="HTTP 500") as info:
        source.fetch(SourceState())
    assert url in str(info.value)


def test_missing_feed_is_404(server: Server) -> None:
    with _feed(server.url("/nothing.xml")) as source, pytest.raises(SourceError, match="404"):
        source.fetch(SourceState())


def test_malformed_xml_names_url(server: Server) -> None:
    url = server.url("/broken.xml")
    with _feed(url) as source, pytest.raises(SourceError, match="malformed feed") as info:
        source.fetch(SourceState())
    assert url in str(info.value)


def test_html_page_is_not_a_feed(server: Server) -> None:
    with _feed(server.url("/page.html")) as source, pytest.raises(SourceError, match="not an RSS"):
        source.fetch(SourceState())


def test_timeout_from_config(server: Server) -> None:
    url = server.url("/slow.xml")
    with _feed(url, timeout=0.05) as source, pytest.raises(SourceError, match="timed out") as info:
        source.fetch(SourceState())
    assert url in str(info.value)


def test_unreachable_host_is_a_source_error() -> None:
    with serve() as srv:
        url = srv.url("/gone.xml")
    # the server is shut down: the port refuses connections
    with _feed(url) as source, pytest.raises(SourceError, match="ConnectError"):
        source.fetch(SourceState())


def test_local_file_feed() -> None:
    cfg = FeedSourceConfig(kind="feed", name="local", path=FIXTURES / "feed_bg.xml")
    with build_source(cfg) as source:
        result = source.fetch(SourceState())
    assert [i.title for i in result.items] == [
        "Соларни покриви за три училища",
        "Семинар за термопомпи",
    ]
    assert result.etag is None


def test_local_file_missing(tmp_path: Path) -> None:
    cfg = FeedSourceConfig(kind="feed", name="local", path=tmp_path / "none.xml")
    with build_source(cfg) as source, pytest.raises(SourceError, match=r"none\.xml"):
        source.fetch(SourceState())


def test_injected_client_is_shared_not_closed(server: Server) -> None:
    with GuardedClient(allow(server)) as client:
        cfg = FeedSourceConfig(kind="feed", name="f", url=server.url("/bg.xml"))
        with build_source(cfg, client) as source:
            source.fetch(SourceState())
        assert not client.is_closed


@pytest.mark.parametrize(
    ("guid", "key"),
    [
        ("https://cluster.example.org/bg/news/solar-roofs", "solar-roofs"),
        ("https://cluster.example.org/en/news/solar-roofs/", "solar-roofs"),
        ("tag:cluster.example.org,2026:news#solar-roofs", "solar-roofs"),
        ("plain-id", "plain-id"),
    ],
)
def test_guid_key(guid: str, key: str) -> None:
    assert guid_key(guid) == key
