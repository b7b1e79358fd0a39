"""Credentials in source URLs, tried as a leak: gather output, status, logs, stored errors.

The source URL carries a password and an API key; a real server on 127.0.0.1 fails in the
ways a source fails, and no message, log record or stored row may show either secret.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures.sources.httpserver import Route, Server, serve

from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.gather import gather
from newsletter.redact import MaskingFilter, is_secret_name, mask_text, mask_url
from newsletter.status import health
from newsletter.store import Store

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
            env={"PATH": "/usr/bin:/bin", "COLUMNS": "250", "NEWSLETTER_SECRET_KEY": "k"},
        )

    for args in (("db", "upgrade"), ("gather",), ("status",)):
        proc = cli(*args)
        _assert_clean(proc.stdout + proc.stderr)
        if args == ("gather",):
            assert proc.returncode == 1 and "HTTP 500" in proc.stdout
            assert "api_key=***" in proc.stdout


def test_a_logged_traceback_is_masked_too() -> None:
    record = logging.LogRecord(
        "newsletter.gather", logging.ERROR, __file__, 1, "crashed", None, None
    )
    try:
        raise ValueError("cannot parse https://ann:s3cr3t-pw@example.org/f?token=T0K-xyz")
    except ValueError:
        record.exc_info = sys.exc_info()
    MaskingFilter().filter(record)
    text = logging.Formatter().format(record)
    _assert_clean(text)
    assert "ann:***@example.org/f?token=***" in text
