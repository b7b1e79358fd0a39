"""Unbounded fetches, tried as an attacker: slow-loris, huge bodies, gzip bombs, item floods.

The servers are real (127.0.0.1, allow-listed) and behave as a hostile source would.
"""

from __future__ import annotations

import gzip
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fixtures.sources.httpserver import Route, Server, allow, serve

from newsletter.config import Gather, Settings
from newsletter.errors import ConfigError, SourceError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.sources import FeedSourceConfig, SourceState, build_source
from newsletter.gather.sources.fetch import fetch_url

RSS = "application/rss+xml; charset=utf-8"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _rss(count: int) -> bytes:
    items = "".join(
        f"<item><title>Story {n}</title><link>https://example.org/s/{n}</link>"
        f"<guid>https://example.org/s/{n}</guid>"
        f"<pubDate>{(START + timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S +0000')}"
        "</pubDate><description>Text</description></item>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Flood</title>'
        f"{items}</channel></rss>"
    ).encode()


@pytest.fixture
def server() -> Iterator[Server]:
    with serve() as srv:
        yield srv


def _fetch(server: Server, path: str, timeout: float = 5, **limits: Any) -> bytes:
    with GuardedClient(allow(server, **limits)) as client:
        return fetch_url(client, server.url(path), timeout=timeout).content


def _feed(server: Server, path: str, **extra: Any) -> Any:
    cfg = FeedSourceConfig.model_validate(
        {"kind": "feed", "name": "flood", "url": server.url(path), **extra}
    )
    with build_source(cfg, policy=allow(server)) as source:
        return source.fetch(SourceState())


def test_a_slow_loris_server_is_cut_at_the_deadline(server: Server) -> None:
    # one byte every 0.1 s: each read is quick, so only a deadline for the whole fetch ends it
    server.routes["/slow.xml"] = Route(_rss(1), content_type=RSS, trickle=0.1)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"timed out after 1s \(the whole fetch"):
        _feed(server, "/slow.xml", timeout=1)
    # a read already waiting is cut at the deadline too, not after its own timeout
    assert time.monotonic() - started < 1.8


def test_the_deadline_covers_redirects_and_body_together(server: Server) -> None:
    server.routes["/a"] = Route(b"", status=302, headers={"Location": "/b"})
    server.routes["/b"] = Route(b"", status=302, headers={"Location": "/slow"})
    server.routes["/slow"] = Route(b"x" * 400, trickle=0.05)
    started = time.monotonic()
    with pytest.raises(SourceError, match="timed out"):
        _fetch(server, "/a", timeout=0.6)
    assert time.monotonic() - started < 1.4


def test_a_declared_oversize_body_is_refused_before_reading(server: Server) -> None:
    server.routes["/big.xml"] = Route(b"<rss>" + b"x" * 3_000_000, content_type=RSS)
    with pytest.raises(SourceError, match=r"larger than 1000000 bytes \(gather\.max_bytes\)"):
        _fetch(server, "/big.xml", max_bytes=1_000_000)


def test_an_undeclared_oversize_body_stops_at_the_limit(server: Server) -> None:
    # no Content-Length: the body ends when the server closes, so only counting stops it
    server.routes["/big.xml"] = Route(b"<rss>" + b"x" * 3_000_000, content_type=RSS, length=False)
    with pytest.raises(SourceError, match="larger than 1000000 bytes"):
        _fetch(server, "/big.xml", max_bytes=1_000_000)


def test_a_gzip_bomb_is_stopped_by_the_decompressed_size(server: Server) -> None:
    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=9)
    assert len(bomb) < 300_000  # small on the wire, 200 MB once inflated
    server.routes["/bomb.xml"] = Route(bomb, content_type=RSS, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match="larger than 1000000 bytes"):
            _fetch(server, "/bomb.xml", max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000, f"inflating took {peak} bytes"


def test_a_gzip_body_under_the_limit_is_read(server: Server) -> None:
    feed = _rss(3)
    server.routes["/ok.xml"] = Route(
        gzip.compress(feed), content_type=RSS, headers={"Content-Encoding": "gzip"}
    )
    assert _fetch(server, "/ok.xml") == feed
    assert server.hits("/ok.xml")[0]["accept-encoding"] == "gzip, identity"


def test_an_encoding_we_did_not_ask_for_is_refused(server: Server) -> None:
    server.routes["/br.xml"] = Route(b"\x1b\x00", headers={"Content-Encoding": "br"})
    with pytest.raises(SourceError, match="unsupported Content-Encoding 'br'"):
        _fetch(server, "/br.xml")


def test_a_feed_with_ten_thousand_items_keeps_the_newest_within_max_items(server: Server) -> None:
    server.routes["/flood.xml"] = Route(_rss(10_000), content_type=RSS)
    result = _feed(server, "/flood.xml")
    assert len(result.items) == 500
    assert {i.title for i in result.items} == {f"Story {n}" for n in range(9_500, 10_000)}
    assert any("10000 entries; read the newest 500" in w for w in result.warnings)


def test_max_items_is_per_feed_and_an_oldest_first_feed_keeps_its_newest(server: Server) -> None:
    server.routes["/old-first.xml"] = Route(_rss(30), content_type=RSS)
    result = _feed(server, "/old-first.xml", max_items=5)
    assert [i.title for i in result.items] == [f"Story {n}" for n in range(25, 30)]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"max_byte": 5}, r"gather\.max_byte: unknown key"),
        ({"max_bytes": "lots"}, r"gather\.max_bytes: "),
        ({"max_bytes": 0}, r"gather\.max_bytes: "),
        ({"max_redirects": 99}, r"gather\.max_redirects: "),
        ({"allow_private": "http://127.0.0.1:8080"}, r"gather\.allow_private: "),
        ({"allow_private": ["http://127.0.0.1:8080/admin"]}, r"gather\.allow_private\[0\]: "),
        ({"allow_private": ["127.0.0.1"]}, r"gather\.allow_private\[0\]: .*not an http"),
        ({"allow_private": ["http://user:pw@10.0.0.1"]}, r"gather\.allow_private\[0\]: "),
    ],
)
def test_bad_gather_config_names_the_key(
    make_config: Callable[..., Settings], table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(gather=table)


def test_feed_max_items_is_validated(make_config: Callable[..., Settings]) -> None:
    feed = {"kind": "feed", "name": "f", "url": "https://example.org/f.xml", "max_items": 0}
    with pytest.raises(ConfigError, match=r"sources\[0\]\.max_items: "):
        make_config(sources=[feed])


def test_gather_defaults() -> None:
    policy = Gather()
    assert (policy.allow_private, policy.max_bytes, policy.max_redirects) == ([], 10_000_000, 5)
    assert Gather(allow_private=["HTTP://Intranet.Example.ORG"]).allow_private == [
        "http://intranet.example.org:80"
    ]


def test_a_hanging_name_lookup_is_cut_at_the_deadline() -> None:
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(30)  # a resolver that never answers in time
        return ["93.184.216.34"]

    started = time.monotonic()
    try:
        with (
            GuardedClient(resolver=hanging) as client,
            pytest.raises(SourceError, match=r"timed out after 0\.5s"),
        ):
            fetch_url(client, "http://slow-dns.example.com/feed.xml", timeout=0.5)
    finally:
        release.set()
    assert time.monotonic() - started < 1.5
