"""Server-side request forgery, tried as an attacker: content steering fetches inward.

Every server here runs on 127.0.0.1 and is NOT allow-listed unless a test says so: the
attack succeeds exactly when such a server sees a request. Each test asserts both that
the fetch is refused with one line naming the URL and the reason, and that the private
server was never reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.sources.httpserver import Route, Server, allow, serve

from newsletter.config import Gather
from newsletter.errors import DestinationRefusedError, SourceError
from newsletter.gather.netguard import GuardedClient, literal_address, refusal
from newsletter.gather.sources import FeedSourceConfig, PageSourceConfig, SourceState, build_source
from newsletter.gather.sources.fetch import fetch_url

SECRET = b"<html><body><h1>Admin</h1><article>root password: hunter2</article></body></html>"
RSS = "application/rss+xml"
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    b"<item><title>Story</title><link>https://example.org/s</link>"
    b"<description>ok</description></item></channel></rss>"
)


@pytest.fixture
def private() -> Iterator[Server]:
    """The internal service an attacker wants read: never allow-listed."""
    with serve({"/admin": Route(SECRET), "/feed.xml": Route(FEED, content_type=RSS)}) as srv:
        yield srv


@pytest.fixture
def public() -> Iterator[Server]:
    """Stands in for a public site: allow-listed, because it too runs on 127.0.0.1."""
    with serve() as srv:
        yield srv


def _fetch(url: str, policy: Gather | None = None, **kwargs: Any) -> None:
    with GuardedClient(policy, **kwargs) as client:
        fetch_url(client, url, timeout=2)


def _feed(url: str, policy: Gather | None = None) -> Any:
    cfg = FeedSourceConfig(kind="feed", name="partners", url=url, timeout=2)
    with build_source(cfg, policy=policy) as source:
        return source.fetch(SourceState())


def test_a_page_listing_linking_to_loopback_never_fetches_it(
    public: Server, private: Server
) -> None:
    listing = f'<ul class="news"><li><a href="{private.url("/admin")}">Read</a></li></ul>'
    public.routes["/list.html"] = Route(listing.encode())
    raw = {"kind": "page", "name": "partners", "url": public.url("/list.html")}
    cfg = PageSourceConfig.model_validate({**raw, "item_links": "ul.news a", "timeout": 2})
    with build_source(cfg, policy=allow(public)) as source, pytest.raises(SourceError) as info:
        source.fetch(SourceState())
    message = str(info.value)
    assert "refused" in message and "127.0.0.1 is a loopback address" in message
    assert private.url("/admin") in message and "\n" not in message
    assert private.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_loopback_is_refused_at_that_hop(
    public: Server, private: Server, status: int
) -> None:
    public.routes["/feed.xml"] = Route(
        b"", status=status, headers={"Location": private.url("/feed.xml")}
    )
    with pytest.raises(DestinationRefusedError) as info:
        _feed(public.url("/feed.xml"), allow(public))
    assert f"redirect to {private.url('/feed.xml')} refused" in str(info.value)
    assert private.requests == [] and len(public.requests) == 1


def test_a_redirect_chain_is_checked_at_every_hop(public: Server, private: Server) -> None:
    public.routes["/a"] = Route(b"", status=302, headers={"Location": "/b"})
    public.routes["/b"] = Route(b"", status=302, headers={"Location": public.url("/c")})
    public.routes["/c"] = Route(b"", status=307, headers={"Location": private.url("/admin")})
    with pytest.raises(DestinationRefusedError, match="loopback"):
        _feed(public.url("/a"), allow(public))
    assert [p for p, _ in public.requests] == ["/a", "/b", "/c"]
    assert private.requests == []


def test_a_redirect_to_link_local_metadata_is_refused(public: Server) -> None:
    target = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    public.routes["/feed.xml"] = Route(b"", status=302, headers={"Location": target})
    with pytest.raises(DestinationRefusedError, match=r"169\.254\.169\.254 is a link-local"):
        _feed(public.url("/feed.xml"), allow(public))


def test_redirect_loops_stop_at_max_redirects(public: Server) -> None:
    public.routes["/loop"] = Route(b"", status=302, headers={"Location": "/loop"})
    with pytest.raises(SourceError, match=r"more than 3 redirects"):
        _fetch(public.url("/loop"), allow(public, max_redirects=3))
    assert len(public.requests) == 4


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",  # decimal
        "0x7f.1",  # hex, short form
        "0x7F000001",
        "017700000001",  # octal
        "127.1",
        "127.0.0.1.",  # trailing dot
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[::ffff:7f00:1]",
        "[::1]",
        "[2002:7f00:1::1]",  # 6to4 around loopback
        "[64:ff9b::7f00:1]",  # NAT64 around loopback
    ],
)
def test_loopback_in_every_spelling_is_refused(private: Server, host: str) -> None:
    port = private.base.rsplit(":", 1)[1]
    with pytest.raises(DestinationRefusedError, match="loopback") as info:
        _feed(f"http://{host}:{port}/feed.xml")
    assert "allow_private" in str(info.value)
    assert private.requests == []


def test_an_allow_listed_origin_is_not_allowed_in_another_spelling(private: Server) -> None:
    port = private.base.rsplit(":", 1)[1]
    policy = allow(private)
    assert _feed(private.url("/feed.xml"), policy).items  # the listed origin works
    for url in (f"http://2130706433:{port}/admin", f"http://localhost:{port}/admin"):
        with pytest.raises(DestinationRefusedError):
            _fetch(url, policy)
    assert [p for p, _ in private.requests] == ["/feed.xml"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://0/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://240.0.0.1/",
        "http://192.0.2.10/",
        "http://[::]/",
        "http://[ff02::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
    ],
)
def test_non_public_ranges_are_refused_without_connecting(url: str) -> None:
    # the guard answers before any packet: nothing listens there, so a connect would
    # give a network error or a timeout instead of this refusal
    with pytest.raises(DestinationRefusedError, match=r"refused: .* (is|inside) "):
        _fetch(url)


def test_a_name_that_resolves_to_loopback_is_refused(private: Server) -> None:
    port = private.base.rsplit(":", 1)[1]
    with pytest.raises(DestinationRefusedError, match="localhost resolves to"):
        _feed(f"http://localhost:{port}/feed.xml")
    assert private.requests == []


def test_dns_rebinding_is_checked_on_the_address_connected_to(private: Server) -> None:
    """The name looks public when first checked, then answers 127.0.0.1 to the connect."""
    port = int(private.base.rsplit(":", 1)[1])
    answers: list[str] = []

    def rebinding(host: str, _port: int) -> list[str]:
        answers.append(host)
        return ["93.184.216.34"] if len(answers) == 1 else ["127.0.0.1"]

    with pytest.raises(DestinationRefusedError, match=r"resolves to 127\.0\.0\.1, a loopback"):
        _fetch(f"http://rebind.example.com:{port}/admin", resolver=rebinding)
    assert len(answers) == 2  # checked first, then resolved again by the connect itself
    assert private.requests == []


def test_a_name_with_one_private_address_among_public_ones_is_refused(private: Server) -> None:
    port = int(private.base.rsplit(":", 1)[1])

    def mixed(host: str, _port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]

    with pytest.raises(DestinationRefusedError, match=r"127\.0\.0\.1"):
        _fetch(f"http://mixed.example.com:{port}/admin", resolver=mixed)
    assert private.requests == []


def test_only_http_and_https_are_fetched() -> None:
    for url in ("file:///etc/passwd", "ftp://example.org/feed.xml", "gopher://example.org/"):
        with pytest.raises(DestinationRefusedError, match="only http and https are fetched"):
            _fetch(url)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("::ffff:93.184.216.34", True),
        ("198.18.0.1", False),
        ("192.88.99.1", False),
        ("2001:db8::1", False),
        ("fec0::1", False),
    ],
)
def test_refusal_table(address: str, public: bool) -> None:
    assert (refusal(address) is None) is public


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("example.org", None),
    ],
)
def test_numeric_hosts_are_read_as_browsers_read_them(host: str, address: str | None) -> None:
    parsed = literal_address(host)
    assert parsed == (ipaddress.ip_address(address) if address else None)


def test_a_host_that_ends_in_a_number_but_is_no_address_is_refused() -> None:
    for host in ("1.2.3.4.5", "256.1.1.1", "0x1g.1"):
        # getaddrinfo would try these as names: refuse them up front instead
        with pytest.raises(SourceError, match=r"refused|not a valid URL"):
            _fetch(f"http://{host}/")
