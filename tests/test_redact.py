"""Credentials in source URLs, tried as a leak: gather output, status, logs, stored errors.

The source URL carries a password and an API key; a real server on 127.0.0.1 fails in the
ways a source fails, and no message, log record or stored row may show either secret.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from fixtures.sources.httpserver import Route, Server, serve
from support import child_env

from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.gather.run import gather
from newsletter.models import DigestEntry
from newsletter.redact import (
    MaskingFilter,
    is_secret_name,
    mask_text,
    mask_url,
    scrub_content,
    url_secrets,
)
from newsletter.render.renderer import Renderer
from newsletter.schedule.status import health
from newsletter.store import Store, tables

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SECRETS = ("s3cr3t-pw", "K3Y-abc123", "T0K-xyz")


def _secret_url(server: Server, path: str) -> str:
    port = server.base.rsplit(":", 1)[1]
    return f"http://ann:s3cr3t-pw@127.0.0.1:{port}{path}?api_key=K3Y-abc123&page=2&token=T0K-xyz"


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in: {text}"


@pytest.fixture
def server() -> Iterator[Server]:
    with serve({"/down.xml": Route(b"boom", status=500)}) as srv:
        yield srv


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "https://ann:pw@feeds.example.org/f.xml?api_key=1&page=2",
            "https://ann:***@feeds.example.org/f.xml?api_key=***&page=2",
        ),
        ("https://tok3n@feeds.example.org/f", "https://***@feeds.example.org/f"),
        (
            "https://example.org/f?APIKEY=1&Signature=2&x=3",
            "https://example.org/f?APIKEY=***&Signature=***&x=3",
        ),
        (
            "https://example.org/f?X-Amz-Signature=a&X-Amz-Credential=b",
            "https://example.org/f?X-Amz-Signature=***&X-Amz-Credential=***",
        ),
        (
            "https://example.org/f?client_secret=a&accessToken=b",
            "https://example.org/f?client_secret=***&accessToken=***",
        ),
        ("https://example.org/f?api%5Fkey=a", "https://example.org/f?api%5Fkey=***"),
        (
            "https://example.org/cb#access_token=a&state=b",
            "https://example.org/cb#access_token=***&state=b",
        ),
        ("https://u:p:q@example.org/", "https://u:***@example.org/"),
        ("https://a@b:c@example.org/", "https://a@b:***@example.org/"),
        ("https://example.org/path@x?q=1", "https://example.org/path@x?q=1"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_mask_text_masks_every_url_in_a_message() -> None:
    text = "'https://a:pw@x.example.org/f?key=1': redirect to <http://y.example.org/?sig=2>"
    assert mask_text(text) == (
        "'https://a:***@x.example.org/f?key=***': redirect to <http://y.example.org/?sig=***>"
    )


@pytest.mark.parametrize(
    "name",
    [
        "key",
        "api_key",
        "apikey",
        "token",
        "access_token",
        "secret",
        "password",
        "pass",
        "sig",
        "signature",
        "auth",
        "PASSWD",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["page", "q", "lang", "format", "id"])
def test_plain_names(name: str) -> None:
    assert not is_secret_name(name)


def test_a_failing_source_leaks_no_credentials_in_report_store_status_or_logs(
    make_config: Callable[..., Settings],
    store: Store,
    server: Server,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sources = [
        {"kind": "feed", "name": "down", "url": _secret_url(server, "/down.xml")},
        {
            "kind": "feed",
            "name": "inward",
            "url": _secret_url(server, "/x").replace("127.0.0.1", "10.0.0.1"),
        },
        {
            "kind": "page",
            "name": "slow",
            "url": _secret_url(server, "/slow.html"),
            "item_links": "a",
            "timeout": 0.2,
        },
    ]
    server.routes["/slow.html"] = Route(hang=True)
    settings = make_config(sources=sources, gather={"allow_private": [server.base]})
    with caplog.at_level(logging.DEBUG):
        report = gather(settings, store, now=NOW)
    # the server got the credentials (they are the operator's), nobody else did
    assert server.hits("/down.xml")[0]["authorization"].startswith("Basic ")
    errors = [s.error or "" for s in report.sources]
    assert "HTTP 500" in errors[0] and "refused" in errors[1] and "timed out" in errors[2]
    for error in errors:
        _assert_clean(error)
        assert "ann:***@" in error and "api_key=***" in error and "page=2" in error
    _assert_clean(caplog.text)
    assert "api_key=***" in caplog.text
    for state in store.items.states():
        _assert_clean(state.last_error or "")
    _assert_clean("\n".join(health(settings, store, NOW).problems))


def test_status_masks_errors_stored_before_masking_existed(
    make_config: Callable[..., Settings], store: Store
) -> None:
    settings = make_config(sources=[{"kind": "feed", "name": "old", "url": "https://example.org/"}])
    leaked = "https://ann:s3cr3t-pw@example.org/f?api_key=K3Y-abc123: HTTP 500"
    store.items.record_gather("old", state=None, count=None, error=leaked, at=NOW)
    problems = "\n".join(health(settings, store, NOW).problems)
    _assert_clean(problems)
    assert "ann:***@example.org/f?api_key=***" in problems


def test_a_config_error_does_not_echo_credentials(make_config: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(gather={"allow_private": ["http://ann:s3cr3t-pw@10.0.0.1"]})
    assert "gather.allow_private[0]" in str(info.value)
    _assert_clean(str(info.value))


def test_cli_gather_and_status_print_masked_urls(tmp_path: Path, server: Server) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[organisation]
name = "Example Cluster"
from_email = "news@example.org"
[paths]
templates = "{ROOT / "templates"}"
[database]
url = "sqlite:///{tmp_path / "nl.db"}"
[gather]
allow_private = ["{server.base}"]
[[sources]]
kind = "feed"
name = "down"
url = "{_secret_url(server, "/down.xml")}"
""",
        encoding="utf-8",
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "newsletter", "--config", str(cfg), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env=child_env(COLUMNS="250", NEWSLETTER_SECRET_KEY="k"),
        )

    for args in (("db", "upgrade"), ("gather",), ("status",)):
        proc = cli(*args)
        _assert_clean(proc.stdout + proc.stderr)
        if args == ("gather",):
            assert proc.returncode == 1 and "HTTP 500" in proc.stdout
            assert "api_key=***" in proc.stdout


def test_a_logged_traceback_is_masked_too() -> None:
    record = logging.LogRecord(
        "newsletter.gather.run", logging.ERROR, __file__, 1, "crashed", None, None
    )
    try:
        raise ValueError("cannot parse https://ann:s3cr3t-pw@example.org/f?token=T0K-xyz")
    except ValueError:
        record.exc_info = sys.exc_info()
    MaskingFilter().filter(record)
    text = logging.Formatter().format(record)
    _assert_clean(text)
    assert "ann:***@example.org/f?token=***" in text


LISTING = b"""<html><body><ul class="news">
<li><a href="/a/1">Read</a></li><li><a href="a/2#top">Read too</a></li>
</ul></body></html>"""
ARTICLE = b"""<html><head><title>Story</title></head><body><h1>Story</h1><article>
<p>Body <a href="/other">relative</a> <a href="#top">here</a>
<a href="https://news.example.org@evil.example.com/login">disguised</a></p>
<img src="pic.png" alt="p"></article></body></html>"""
FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>/</link>
<item><title>Feed story</title><link>/s/1</link><guid isPermaLink="true">/s/1</guid>
<description>&lt;p&gt;See &lt;a href="/rel"&gt;this&lt;/a&gt;&lt;/p&gt;</description>
<enclosure url="/i.png" type="image/png" length="1"/></item></channel></rss>"""


def test_credentials_of_a_working_source_never_reach_the_content_readers_get(
    make_config: Callable[..., Settings], store: Store, server: Server
) -> None:
    """Relative links resolve against the source's URL, user:pw@ and api_key included:
    stored, they would be mailed to every reader and shown on the public archive."""
    server.routes.update(
        {
            "/list.html": Route(LISTING),
            "/a/1": Route(ARTICLE),
            "/a/2": Route(ARTICLE.replace(b"Story", b"Second")),
            "/feed.xml": Route(FEED, content_type="application/rss+xml"),
        }
    )
    page = {
        "kind": "page",
        "name": "page",
        "url": _secret_url(server, "/list.html"),
        "item_links": "ul.news a",
        "body": "article",
    }
    feed = {
        "kind": "feed",
        "name": "feed",
        "url": _secret_url(server, "/feed.xml"),
        "translation_key": "link",
    }
    settings = make_config(sources=[page, feed], gather={"allow_private": [server.base]})
    report = gather(settings, store, now=NOW)
    assert [s.error for s in report.sources] == [None, None]
    # the operator's server still got the credentials, for every article it served
    assert server.hits("/a/1")[0]["authorization"].startswith("Basic ")
    items = store.items.list()
    assert len(items) == 3
    with store.engine.connect() as conn:
        rows = "\n".join(repr(tuple(row)) for row in conn.execute(sa.select(tables.items)))
    _assert_clean(rows)
    assert "ann" not in rows and "@evil.example.com" not in rows
    links = {i.link for i in items}
    assert f"{server.base}/a/1" in links and f"{server.base}/s/1" in links
    assert any(i.image == f"{server.base}/i.png" for i in items)
    # the mailed digest and its text part: nothing either
    variant = Renderer(settings).render(
        segment=settings.segments[0],
        period_label="23–29.11.2026",
        edition_date=date(2026, 11, 27),
        entries=[DigestEntry(i, i.lang, False) for i in items],
        locale=settings.locales.default,
        view_url="https://news.example.org/archive/1/bg",
    )
    _assert_clean(variant.html + variant.text)
    assert "ann:" not in variant.html + variant.text


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("http://ann:pw@example.org/a", "http://example.org/a"),
        ("HTTPS://tok@example.org/", "HTTPS://example.org/"),
        (
            '<a href="https://u:p@example.org/x?api_key=K3Y-abc123&amp;n=1">',
            '<a href="https://example.org/x?api_key=***&amp;n=1">',
        ),
        ("https://example.org/f?x=1;token=T0K-xyz#t", "https://example.org/f?x=1;token=***#t"),
        (
            "mail ana@example.org, https://example.org/@user",
            "mail ana@example.org, https://example.org/@user",
        ),
    ],
)
def test_scrub_content(text: str, scrubbed: str) -> None:
    assert scrub_content(text, url_secrets(_SECRET)) == scrubbed


_SECRET = "http://ann:s3cr3t-pw@example.org/f?api_key=K3Y-abc123&token=T0K-xyz"


def test_url_secrets() -> None:
    assert url_secrets(_SECRET) == {"s3cr3t-pw", "K3Y-abc123", "T0K-xyz"}
    assert url_secrets("https://example.org/f?page=2") == frozenset()
    assert url_secrets("https://tok%2Ben@example.org/") == {"tok%2Ben", "tok+en"}
    assert url_secrets(None) == frozenset()


def test_semicolon_separated_parameters_are_masked() -> None:
    assert mask_url("https://example.org/f?page=1;token=T0K-xyz") == (
        "https://example.org/f?page=1;token=***"
    )
    assert mask_url("https://example.org/f?pw=s3cr3t-pw") == "https://example.org/f?pw=***"
