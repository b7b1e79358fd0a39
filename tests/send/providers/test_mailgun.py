"""Mailgun adapter against a local server validating every call with Mailgun's spec."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from email.utils import parseaddr

import pytest

from newsletter.config import Settings
from newsletter.errors import ConfigError, ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers import build_provider
from newsletter.send.providers.mailgun import MailgunProvider
from send.providers.composed import NONCE, VARIANT, composed
from send.providers.fake_mailgun import API_KEY, DOMAIN, expand, serve
from send.providers.specserver import Answer, SpecServer
from send.providers.support import StandIn

STAND_IN = StandIn(serve)


def send(
    server: SpecServer, batch: list[OutgoingMessage], *, key: str = API_KEY, timeout: float = 5
) -> list[SendResult]:
    provider = MailgunProvider(key, DOMAIN, base_url=server.base_url, timeout=timeout)

    async def go() -> list[SendResult]:
        async with provider:
            return await provider.send_batch(batch)

    return asyncio.run(go())


def accepted_recipients(server: SpecServer) -> Counter[str]:
    """How often each address was in a call the server accepted."""
    return Counter(
        parseaddr(to)[1]
        for r in server.requests
        if r.answered == 200 and r.form
        for to in r.form["to"]
    )


def test_one_call_per_shared_body_and_every_reader_gets_their_message(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    batch = composed(make_config, 10)
    results = send(server, batch)
    assert [r.delivery_id for r in results] == [m.delivery_id for m in batch]
    assert {r.status for r in results} == {ResultStatus.ACCEPTED}
    assert len({r.provider_message_id for r in results}) == 10
    assert len(server.requests) == 2  # with and without a name
    delivered = {}
    for request in server.requests:
        form = request.form or {}
        assert request.path == f"/v3/{DOMAIN}/messages"
        assert request.content_type.startswith("multipart/form-data")
        assert parseaddr(form["from"][0]) == (VARIANT.from_name, "news@cluster.example.org")
        assert form["subject"] == ["Седмичен бюлетин: „Енергия“ & още 4 новини"]
        assert f"%recipient.nl{NONCE}_email%" in form["html"][0]
        assert form["h:List-Unsubscribe"] == ["%recipient.h_list_unsubscribe%"]
        assert form["h:List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
        assert form["o:tag"] == ["members"]
        assert form["v:edition_id"] == ["%recipient.edition_id%"]
        for got in expand(form):
            delivered[parseaddr(got.to)[1]] = got
    for msg in batch:
        got = delivered[msg.to_email]
        assert parseaddr(got.to) == (msg.to_name, msg.to_email) or not msg.to_name
        assert got.html == msg.html and got.text == msg.text
        assert got.headers["List-Unsubscribe"] == msg.headers["List-Unsubscribe"]
        assert got.headers["List-Id"] == "members <members.news.example.org>"
        assert got.variables == {
            "delivery_id": str(msg.delivery_id),
            "edition_id": "3",
            "subscriber_id": msg.metadata["subscriber_id"],
        }
    assert parseaddr(delivered["reader0@example.org"].to)[0] == 'Мария "Енергия" Петрова, инж.'
    assert "Здравейте, Ελένη Παπαδοπούλου!" in delivered["reader3@example.org"].text


def test_invalid_address_fails_alone_and_nobody_gets_two_copies(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    emails = [f"r{i}@example.org" for i in range(8)]
    emails[5] = "no-at-sign.example.org"
    batch = composed(make_config, 8, emails=emails, names=["Читател"] * 8)
    results = send(server, batch)
    assert [r.status for r in results] == [ResultStatus.ACCEPTED] * 5 + [ResultStatus.PERMANENT] + [
        ResultStatus.ACCEPTED
    ] * 2
    assert results[5].error == (
        "HTTP 400: 'to' parameter is not a valid address. please check documentation "
        "(recipient 'no-at-sign.example.org')"
    )
    good = [e for e in emails if "@" in e]
    assert accepted_recipients(server) == Counter(good)
    # halving 8 -> 4 -> 2 -> 1 costs at most 2 * log2(8) calls more
    assert len(server.requests) <= 1 + 2 * 3


def test_rejection_not_about_a_recipient_fails_the_group_once(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    server.script(Answer(400, {"message": "from parameter is missing"}))
    results = send(server, composed(make_config, 4, names=["Анна"] * 4))
    assert {r.status for r in results} == {ResultStatus.PERMANENT}
    assert results[0].error == "HTTP 400: from parameter is missing"
    assert len(server.requests) == 1


def test_same_address_twice_goes_in_separate_calls(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    emails = ["same@example.org", "other@example.org", "same@example.org"]
    results = send(server, composed(make_config, 3, emails=emails, names=["Анна"] * 3))
    assert {r.status for r in results} == {ResultStatus.ACCEPTED}
    assert len(server.requests) == 2
    assert accepted_recipients(server) == Counter(emails)


# answers lost to a timeout or a reset: test_lost_answers.py
@pytest.mark.parametrize(
    ("answer", "expected", "wait"),
    [
        (
            Answer(
                429,
                {"message": "account-requests-per-sec limit exceeded"},
                headers={"Retry-After": "120"},
            ),
            "HTTP 429: account-requests-per-sec limit exceeded",
            120.0,
        ),
        (
            Answer(500, {"message": "Internal Server Error"}),
            "HTTP 500: Internal Server Error",
            None,
        ),
    ],
)
def test_retryable_failures(
    server: SpecServer,
    make_config: Callable[..., Settings],
    answer: Answer,
    expected: str,
    wait: float | None,
) -> None:
    server.script(answer)
    results = send(server, composed(make_config, 3, names=["Анна"] * 3), timeout=0.3)
    assert {r.status for r in results} == {ResultStatus.RETRYABLE}
    assert all(expected in (r.error or "") for r in results), results[0].error
    assert {r.retry_after for r in results} == {wait}
    assert len(server.requests) == 1


def test_wrong_key_raises_provider_error(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    with pytest.raises(ProviderError, match="Forbidden"):
        send(server, composed(make_config, 2), key="key-wrong")


def test_full_batch_of_1000_in_one_call(
    server: SpecServer, make_config: Callable[..., Settings]
) -> None:
    batch = composed(make_config, 1000, names=["Читател"] * 1000)
    results = send(server, batch)
    assert len(results) == 1000 and {r.status for r in results} == {ResultStatus.ACCEPTED}
    [request] = server.requests
    assert request.form is not None and len(request.form["to"]) == 1000
    assert request.body.count(b"<html") == 1


def test_region_domain_and_config(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NL_MG_KEY", "key-from-env")
    provider = build_provider(
        make_config(
            provider={
                "name": "mailgun",
                "domain": "mg.cluster.example.org",
                "api_key_env": "NL_MG_KEY",
                "region": "eu",
                "tags": ["weekly"],
            }
        )
    )
    assert isinstance(provider, MailgunProvider)
    assert provider.base_url == "https://api.eu.mailgun.net"
    assert provider.domain == "mg.cluster.example.org"
    assert provider.tags == ("weekly",)
    assert MailgunProvider("k", "d.example.org").base_url == "https://api.mailgun.net"
    asyncio.run(provider.aclose())
    with pytest.raises(ConfigError, match=r"provider\.domain"):
        make_config(provider={"name": "mailgun"})
