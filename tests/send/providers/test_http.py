"""The shared HTTP provider base: Retry-After, rate-limit resets, credentials, addresses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr

import httpx
import pytest

from newsletter.config import Settings
from newsletter.errors import ConfigError, ProviderError
from newsletter.models import ResultStatus
from newsletter.send.providers import build_provider
from newsletter.send.providers.http import (
    THROTTLE_WAIT,
    env_secret,
    error_text,
    mailbox,
    parse_retry_after,
    retry_after_from,
)
from newsletter.send.providers.postmark import PostmarkProvider, PostmarkProviderConfig
from send.providers.composed import composed

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC).timestamp()


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    date = format_datetime(datetime(2026, 11, 28, 8, 1, 30, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(date, now=NOW) == 90.0
    past = format_datetime(datetime(2026, 11, 28, 7, 0, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(past, now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "Mon, 99 Foo 2026"])
def test_retry_after_unreadable_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_rate_limit_reset_headers() -> None:
    # seconds to wait (Brevo, IETF draft) and an epoch second (SendGrid)
    assert retry_after_from(httpx.Headers({"x-sib-ratelimit-reset": "12"}), now=NOW) == 12.0
    epoch = httpx.Headers({"X-RateLimit-Reset": str(int(NOW) + 40)})
    assert retry_after_from(epoch, now=NOW) == 40.0
    both = httpx.Headers({"Retry-After": "5", "RateLimit-Reset": "60"})
    assert retry_after_from(both, now=NOW) == 5.0
    assert retry_after_from(httpx.Headers({"ratelimit-reset": "x"}), now=NOW) is None


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        # a 429 is a throttle even when it names no time: it always carries a wait, which
        # pauses every batch and keeps the recipients' attempts
        (429, {}, THROTTLE_WAIT),
        (429, {"Retry-After": "7"}, 7.0),
        (429, {"X-RateLimit-Reset": "12"}, 12.0),
        # a server error is no throttle unless it says how long to wait
        (503, {}, None),
        (503, {"Retry-After": "3"}, 3.0),
    ],
)
def test_throttles_always_carry_a_wait(
    make_config: Callable[..., Settings], status: int, headers: dict[str, str], wait: float | None
) -> None:
    provider = PostmarkProvider("t", base_url="http://127.0.0.1:9")
    request = httpx.Request("POST", "http://127.0.0.1:9/email/batch")
    answer = httpx.Response(status, headers=headers, json={"Message": "slow"}, request=request)
    failed = provider.failure(answer, composed(make_config, 2))
    assert [(r.status, r.retry_after) for r in failed.results] == [
        (ResultStatus.RETRYABLE, wait)
    ] * 2
    asyncio.run(provider.aclose())


def test_error_text_reads_the_usual_shapes() -> None:
    def text(status: int, **kwargs: object) -> str:
        return error_text(httpx.Response(status, **kwargs))  # type: ignore[arg-type]

    assert text(400, json={"message": "bad from"}) == "HTTP 400: bad from"
    assert text(400, json={"errors": [{"message": "a"}, {"message": "b"}]}) == "HTTP 400: a; b"
    assert text(502, text="<html>Bad   gateway</html>") == "HTTP 502: <html>Bad gateway</html>"
    assert text(503) == "HTTP 503"
    assert len(text(400, text="x" * 5000)) == 500


def test_mailbox_quotes_names_and_keeps_cyrillic() -> None:
    name = 'Мария "Енергия" Петрова, инж.'
    assert parseaddr(mailbox(name, "maria@example.org")) == (name, "maria@example.org")
    assert mailbox("  ", "a@example.org") == "a@example.org"


def test_missing_credential_names_the_key_and_variable(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NL_TEST_PM_TOKEN", raising=False)
    settings = make_config(provider={"name": "postmark", "token_env": "NL_TEST_PM_TOKEN"})
    with pytest.raises(ConfigError) as err:
        build_provider(settings)
    assert str(err.value) == (
        f"{settings.config_path}: provider.token_env: "
        "environment variable NL_TEST_PM_TOKEN is not set"
    )
    monkeypatch.setenv("NL_TEST_PM_TOKEN", "   ")
    with pytest.raises(ConfigError, match="NL_TEST_PM_TOKEN is not set"):
        env_secret(PostmarkProviderConfig(token_env="NL_TEST_PM_TOKEN"), "token_env")


def test_batch_size_above_the_limit_names_the_key(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", "token")
    settings = make_config(provider={"name": "postmark", "batch_size": 501})
    with pytest.raises(
        ConfigError, match=r"provider\.batch_size: 501 is above postmark's limit of 500"
    ):
        build_provider(settings)


def test_config_builds_the_provider_with_base_url_and_timeout(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", "token")
    settings = make_config(
        provider={
            "name": "postmark",
            "base_url": "http://127.0.0.1:9/proxy/",
            "timeout": 2.5,
            "message_stream": "digest-broadcast",
            "batch_size": 500,
        }
    )
    provider = build_provider(settings)
    assert isinstance(provider, PostmarkProvider)
    assert provider.base_url == "http://127.0.0.1:9/proxy"
    assert provider.message_stream == "digest-broadcast"
    assert provider.client.timeout == httpx.Timeout(2.5)
    assert provider.headers["X-Postmark-Server-Token"] == "token"
    asyncio.run(provider.aclose())
    assert provider.client.is_closed


def test_unknown_provider_name_is_a_config_error(make_config: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match=r"provider.*postmarc"):
        make_config(provider={"name": "postmarc"})


def test_a_base_url_that_cannot_work_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"provider\.base_url"):
        PostmarkProvider("t", base_url="ftp://mail.example.org")


def test_refused_connection_is_retryable_never_an_httpx_error(
    make_config: Callable[..., Settings],
) -> None:
    # port 9 (discard) on loopback is closed here: the connection is refused at once
    provider = PostmarkProvider("t", base_url="http://127.0.0.1:9", timeout=2)
    messages = composed(make_config, 2)

    async def run() -> None:
        async with provider:
            results = await provider.send_batch(messages)
            assert {r.status for r in results} == {ResultStatus.RETRYABLE}
            assert all("ConnectError" in (r.error or "") for r in results)
            assert "the request did not reach the provider" in (results[0].error or "")

    asyncio.run(run())
    with pytest.raises(ProviderError, match="closed"):
        asyncio.run(provider.send_batch(messages))
