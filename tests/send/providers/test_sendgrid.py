"""SendGrid adapter against a local server validating every request with SendGrid's spec."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from newsletter.config import Settings
from newsletter.errors import ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.personalize import markers
from newsletter.send.providers import build_provider
from newsletter.send.providers.sendgrid import SendgridProvider
from send.providers.composed import NONCE, VARIANT, composed
from send.providers.fake_sendgrid import API_KEY, expand, serve
from send.providers.specserver import Answer, SpecServer
from send.providers.support import StandIn

STAND_IN = StandIn(serve)


def send(server: SpecServer, batch: list[OutgoingMessage], **options: float) -> list[SendResult]:
    provider = SendgridProvider(API_KEY, base_url=server.base_url, **options)  # type: ignore[arg-type]

    async def go() -> list[SendResult]:
        async with provider:
            return await provider.send_batch(batch)

    return asyncio.run(go())


def test_body_sent_once_per_request_and_every_reader_gets_their_message(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    batch = composed(make_config, 10)
    results = send(server, batch)
    assert server.invalid == []
    assert [r.delivery_id for r in results] == [m.delivery_id for m in batch]
    assert {r.status for r in results} == {ResultStatus.ACCEPTED}
    # readers with and without a name get different greetings: two shared bodies
    assert len(server.requests) == 2
    delivered = {}
    for request in server.requests:
        body = request.json
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
        assert markers(NONCE).placeholders["email"] in body["content"][1]["value"]  # not a message
        assert body["from"] == {"email": "news@cluster.example.org", "name": VARIANT.from_name}
        assert body["subject"] == "Седмичен бюлетин: „Енергия“ & още 4 новини"
        assert body["categories"] == ["members"]
        assert body["headers"] == {
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": "members <members.news.example.org>",
        }
        for got in expand(body):
            delivered[got.to["email"]] = got
    x_ids = {r.provider_message_id.split("/")[0] for r in results if r.provider_message_id}
    assert len(x_ids) == 2
    for msg in batch:
        got = delivered[msg.to_email]
        assert got.html == msg.html and got.text == msg.text
        assert got.to == (
            {"email": msg.to_email, "name": msg.to_name} if msg.to_name else {"email": msg.to_email}
        )
        assert got.headers["List-Unsubscribe"] == msg.headers["List-Unsubscribe"]
        assert got.custom_args == {
            "delivery_id": str(msg.delivery_id),
            "edition_id": "3",
            "subscriber_id": msg.metadata["subscriber_id"],
        }
    assert delivered["reader0@example.org"].to["name"] == 'Мария "Енергия" Петрова, инж.'
    assert "Здравейте, Иван &amp; Синове!" in delivered["reader1@example.org"].html
    assert "Здравейте, Иван & Синове!" in delivered["reader1@example.org"].text


@pytest.mark.spec_invalid
def test_invalid_address_fails_alone(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    emails = ["a@example.org", "b@example.org", "no-at-sign.example.org", "d@example.org"]
    batch = composed(make_config, 4, emails=emails, names=["Анна", "Борис", "Вера", "Дора"])
    results = send(server, batch)
    assert [r.status for r in results] == [
        ResultStatus.ACCEPTED,
        ResultStatus.ACCEPTED,
        ResultStatus.PERMANENT,
        ResultStatus.ACCEPTED,
    ]
    assert results[2].error == (
        "HTTP 400: Does not contain a valid address. [personalizations.2.to.0.email] "
        "(recipient 'no-at-sign.example.org')"
    )
    # the field named the culprit: one rejected call, one resend without it
    assert [r.valid for r in server.requests] == [False, True]
    assert server.invalid[0].error_paths == ("personalizations.2.to.0.email",)
    assert [p["to"][0]["email"] for p in server.requests[1].json["personalizations"]] == [
        "a@example.org",
        "b@example.org",
        "d@example.org",
    ]


def test_rejection_not_about_a_recipient_fails_the_group_once(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    message = "The from address does not match a verified Sender Identity."
    server.script(Answer(400, {"errors": [{"message": message, "field": "from", "help": None}]}))
    batch = composed(make_config, 4, names=["Анна"] * 4)
    results = send(server, batch)
    assert {r.status for r in results} == {ResultStatus.PERMANENT}
    assert results[0].error == f"HTTP 400: {message} [from]"
    assert len(server.requests) == 1


def test_429_uses_the_rate_limit_reset(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    reset = int(time.time()) + 30
    server.script(
        Answer(
            429,
            {"errors": [{"message": "too many requests", "field": None}]},
            headers={
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            },
        )
    )
    results = send(server, composed(make_config, 3, names=["Анна"] * 3))
    assert {r.status for r in results} == {ResultStatus.RETRYABLE}
    assert all(r.retry_after is not None and 20 <= r.retry_after <= 30 for r in results)
    assert results[0].error == "HTTP 429: too many requests"


# answers lost to a timeout or a reset: test_lost_answers.py
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(500, {"errors": [{"message": "internal error"}]}), "HTTP 500: internal error"),
        (Answer(502, "Bad Gateway", content_type="text/html"), "HTTP 502: Bad Gateway"),
    ],
)
def test_retryable_failures(
    server: SpecServer, make_config: Callable[..., Settings], answer: Answer, expected: str
) -> None:
    server.script(answer, answer)
    results = send(server, composed(make_config, 2, names=["Анна", "Борис"]), timeout=0.3)
    assert {r.status for r in results} == {ResultStatus.RETRYABLE}
    assert all(expected in (r.error or "") for r in results), results[0].error
    assert len(server.requests) == 1  # a retryable failure is not split and resent


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_stop_the_provider(
    server: SpecServer, make_config: Callable[..., Settings], status: int
) -> None:
    server.script(Answer(status, {"errors": [{"message": "access forbidden", "field": None}]}))
    with pytest.raises(ProviderError, match="access forbidden"):
        send(server, composed(make_config, 2))


def test_wrong_key_is_refused_by_the_fake(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    provider = SendgridProvider("SG.wrong", base_url=server.base_url)
    with pytest.raises(ProviderError, match="authorization grant is invalid"):
        asyncio.run(provider.send_batch(composed(make_config, 1)))


def test_full_batch_of_1000_personalizations_in_one_request(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    batch = composed(make_config, 1000, names=["Читател"] * 1000)
    results = send(server, batch)
    assert server.invalid == []
    assert len(results) == 1000 and {r.status for r in results} == {ResultStatus.ACCEPTED}
    [request] = server.requests
    assert len(request.json["personalizations"]) == 1000
    # the body travels once, the values 1000 times
    assert request.body.count(b"<html") == 1
    assert request.body.count("Здравейте".encode()) == 2  # the HTML and the text part


def test_region_and_config(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NL_SG_KEY", "SG.from-env")
    eu = build_provider(
        make_config(
            provider={
                "name": "sendgrid",
                "api_key_env": "NL_SG_KEY",
                "region": "eu",
                "categories": ["weekly"],
            }
        )
    )
    assert isinstance(eu, SendgridProvider)
    assert eu.base_url == "https://api.eu.sendgrid.com"
    assert eu.headers["Authorization"] == "Bearer SG.from-env"
    assert eu.categories == ("weekly",)
    proxied = SendgridProvider("k", region="eu", base_url="http://127.0.0.1:8025/sg")
    assert proxied.base_url == "http://127.0.0.1:8025/sg"
    assert SendgridProvider("k").base_url == "https://api.sendgrid.com"
    for provider in (eu, proxied):
        asyncio.run(provider.aclose())
