"""Amazon SES v2 provider against a local server checking the service model and SigV4."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import pytest

from newsletter.config import Settings
from newsletter.errors import ConfigError, ProviderError
from newsletter.models import ResultStatus
from newsletter.send.providers import build_provider
from newsletter.send.providers.http import THROTTLE_WAIT
from newsletter.send.providers.ses import SesProvider
from send.providers.aws import ServiceModelValidator, verify_sigv4
from send.providers.fake_ses import (
    ACCESS_KEY,
    MODEL,
    REGION,
    SECRET_KEY,
    FakeSes,
    aws_error,
    provider_for,
    serve,
)
from send.providers.specserver import Answer, Recorded, SpecServer
from send.providers.support import StandIn, make_message, statuses
from send.providers.support import send_batches as send

A, P, R = ResultStatus.ACCEPTED, ResultStatus.PERMANENT, ResultStatus.RETRYABLE


@pytest.fixture
def fake() -> FakeSes:
    return FakeSes()


STAND_IN = StandIn(serve, with_fake=True)


def test_each_message_is_a_signed_raw_send_email(server: SpecServer, fake: FakeSes) -> None:
    messages = [make_message(i, to_name=f"Елена Иванова-Стоянова {i}") for i in (1, 2, 3)]
    [results] = send(provider_for(server), messages)
    assert statuses(results) == [A, A, A]
    assert len({r.provider_message_id for r in results}) == 3
    assert all(r.path == "/v2/email/outbound-emails" for r in server.requests)
    auth = server.requests[0].headers["authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert f"/{REGION}/ses/aws4_request, SignedHeaders=" in auth
    by_to = {s.to[0]: s for s in fake.sent}
    for msg, result in zip(messages, results, strict=True):
        sent = by_to[msg.to_email]
        assert result.provider_message_id == sent.message_id
        assert str(sent.mime["Subject"]) == msg.subject
        assert sent.mime["To"].addresses[0].display_name == msg.to_name
        assert sent.mime["From"].addresses[0].display_name == msg.from_name
        assert sent.mime["Message-ID"] == msg.message_id
        assert sent.mime["List-Unsubscribe"] == msg.headers["List-Unsubscribe"]
        assert sent.mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = sent.mime.get_body(preferencelist=("html",))
        assert html is not None and html.get_content() == msg.html
        assert sent.tags == {"delivery_id": str(msg.delivery_id), "edition_id": "3"}


def test_rejections_fail_only_their_message(server: SpecServer, fake: FakeSes) -> None:
    fake.sandbox_unverified = {"reader2@example.org"}
    batch = [make_message(1), make_message(2), make_message(3, to_email="reader3@example")]
    batch.append(make_message(4))
    [results] = send(provider_for(server), batch)
    assert statuses(results) == [A, P, P, A]
    assert results[1].error is not None
    assert results[1].error.startswith("HTTP 400: MessageRejected: Email address is not verified")
    assert "reader2@example.org" in results[1].error
    assert (
        results[2].error is not None and "BadRequestException: Illegal address" in results[2].error
    )
    assert sorted(s.to[0] for s in fake.sent) == ["reader1@example.org", "reader4@example.org"]


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        # throttles without a time still pause everything: THROTTLE_WAIT
        (aws_error("TooManyRequestsException", "Too Many Requests"), THROTTLE_WAIT),
        (Answer(429, {"message": "Rate exceeded"}, headers={"Retry-After": "4"}), 4.0),
        (aws_error("LimitExceededException", "Maximum sending rate exceeded."), THROTTLE_WAIT),
        (Answer(400, {"__type": "ThrottlingException", "message": "Rate exceeded"}), THROTTLE_WAIT),
        (
            Answer(500, {"message": "Internal"}, headers={"x-amzn-ErrorType": "InternalFailure"}),
            None,
        ),
    ],
)
def test_throttling_and_server_errors_are_retryable(
    server: SpecServer, answer: Answer, wait: float | None
) -> None:
    server.script(answer)
    [results] = send(provider_for(server), [make_message(1), make_message(2)])
    assert sorted(statuses(results)) == [A, R]
    retry = next(r for r in results if r.status is R)
    assert retry.retry_after == wait
    assert retry.error is not None and str(answer.status) in retry.error


@pytest.mark.parametrize(
    "name",
    [
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
    ],
)
def test_account_errors_stop_the_run(server: SpecServer, name: str) -> None:
    server.script(aws_error(name, "The account cannot send now"))
    with pytest.raises(ProviderError, match=name):
        send(provider_for(server, parallel_requests=1), [make_message(1)])


def test_wrong_secret_fails_the_signature_check(server: SpecServer, fake: FakeSes) -> None:
    provider = SesProvider(ACCESS_KEY, "not-the-secret", REGION, base_url=server.base_url)
    with pytest.raises(ProviderError, match="SignatureDoesNotMatch"):
        send(provider, [make_message(1)])
    assert fake.sent == []


def test_session_token_is_sent_and_signed(server: SpecServer, fake: FakeSes) -> None:
    fake.session_token = "FwoGZXIvYXdzEXAMPLETOKEN"
    [ok] = send(provider_for(server, session_token="FwoGZXIvYXdzEXAMPLETOKEN"), [make_message(1)])
    assert statuses(ok) == [A]
    assert "x-amz-security-token" in server.requests[0].headers["authorization"]
    with pytest.raises(ProviderError, match="x-amz-security-token"):
        send(provider_for(server), [make_message(2)])


def test_timeout_and_reset_are_unknown_and_not_resent(server: SpecServer, fake: FakeSes) -> None:
    server.script(Answer(200, {"MessageId": "late"}, delay=2.0))
    [slow] = send(provider_for(server, timeout=0.3), [make_message(1)])
    server.script(Answer(reset=True))
    [reset] = send(provider_for(server), [make_message(2)])
    assert statuses(slow) == statuses(reset) == [ResultStatus.UNKNOWN]
    assert slow[0].error is not None and "no answer" in slow[0].error
    assert len(server.requests) == 2  # no idempotency key: SES gets each message once


def test_unencodable_message_is_permanent_without_a_request(server: SpecServer) -> None:
    [results] = send(provider_for(server), [make_message(1, to_email="no-at-sign.example.org")])
    assert statuses(results) == [P]
    assert server.requests == []


def test_validator_and_signature_check_catch_mistakes(server: SpecServer) -> None:
    [_] = send(provider_for(server), [make_message(1)])
    good = server.requests[0]
    validator = ServiceModelValidator(MODEL)
    assert validator(good) is None
    body = dict(good.json)
    bad_tags = {**body, "EmailTags": [{"Name": "x"}]}
    assert "EmailTags[0].Value: required member missing" in (validator(_with(good, bad_tags)) or "")
    assert "Destinations: unknown member" in (
        validator(_with(good, {**body, "Destinations": {}})) or ""
    )
    no_b64 = {**body, "Content": {"Raw": {"Data": "not base64!"}}}
    assert "not valid base64" in (validator(_with(good, no_b64)) or "")
    creds = {"access_key": ACCESS_KEY, "region": REGION, "service": "ses"}
    assert verify_sigv4(good, secret_key=SECRET_KEY, **creds) is None
    assert verify_sigv4(good, secret_key="other", **creds) == "signature does not match"
    tampered = Recorded(**{**good.__dict__, "body": good.body.replace(b"reader1", b"reader9")})
    assert verify_sigv4(tampered, secret_key=SECRET_KEY, **creds) is not None


def _with(request: Recorded, body: dict[str, object]) -> Recorded:
    return Recorded(**{**request.__dict__, "json": body})


def test_from_config(
    make_config: Callable[..., Settings], server: SpecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SES_ID", ACCESS_KEY)
    monkeypatch.setenv("TEST_SES_SECRET", SECRET_KEY)
    table = {
        "name": "ses",
        "region": REGION,
        "access_key_id_env": "TEST_SES_ID",
        "secret_access_key_env": "TEST_SES_SECRET",
        "base_url": server.base_url,
    }
    provider = build_provider(make_config(provider=table))
    assert isinstance(provider, SesProvider)
    [results] = send(provider, [make_message(1)])
    assert statuses(results) == [A]
    raw = base64.b64decode(server.requests[0].json["Content"]["Raw"]["Data"])
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
    default = build_provider(
        make_config(provider={k: v for k, v in table.items() if k != "base_url"})
    )
    assert isinstance(default, SesProvider)
    assert default.base_url == f"https://email.{REGION}.amazonaws.com"
    asyncio.run(default.aclose())


def test_config_errors_name_the_key(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SES_ID", ACCESS_KEY)
    monkeypatch.delenv("TEST_SES_SECRET", raising=False)
    monkeypatch.delenv("TEST_SES_TOKEN", raising=False)
    table = {
        "name": "ses",
        "region": REGION,
        "access_key_id_env": "TEST_SES_ID",
        "secret_access_key_env": "TEST_SES_SECRET",
    }
    with pytest.raises(ConfigError, match=r"provider\.secret_access_key_env: .*TEST_SES_SECRET"):
        build_provider(make_config(provider=table))
    monkeypatch.setenv("TEST_SES_SECRET", SECRET_KEY)
    with pytest.raises(ConfigError, match=r"provider\.session_token_env: .*TEST_SES_TOKEN"):
        build_provider(make_config(provider={**table, "session_token_env": "TEST_SES_TOKEN"}))
    with pytest.raises(ConfigError, match=r"provider\.batch_size: 51 is above ses's limit of 50"):
        build_provider(make_config(provider={**table, "batch_size": 51}))
    with pytest.raises(ConfigError, match=r"provider\.region"):
        make_config(provider={**table, "region": "Frankfurt"})
