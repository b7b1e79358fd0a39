"""Resend provider against a local server validating every request with Resend's OpenAPI."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

import pytest

from newsletter.config import Settings
from newsletter.errors import ConfigError, ProviderError
from newsletter.models import ResultStatus
from newsletter.send.providers import build_provider
from newsletter.send.providers.idempotency import request_key
from newsletter.send.providers.resend import ResendProvider
from send.providers.fake_resend import API_KEY, INVALID_TO, FakeResend, serve
from send.providers.specserver import Answer, Recorded, SpecServer
from send.providers.support import StandIn, make_message, statuses
from send.providers.support import send_batches as send

A, P, R = ResultStatus.ACCEPTED, ResultStatus.PERMANENT, ResultStatus.RETRYABLE


@pytest.fixture
def fake() -> FakeResend:
    return FakeResend()


STAND_IN = StandIn(serve, with_fake=True)


def provider_for(server: SpecServer, **options: object) -> ResendProvider:
    settings: dict[str, object] = {"base_url": server.base_url, "timeout": 5, "resend_pause": 0}
    settings.update(options)
    return ResendProvider(API_KEY, **settings)  # type: ignore[arg-type]


def uid(n: int) -> str:
    return str(uuid.UUID(int=n))


def test_batch_is_one_request_with_key_headers_and_tags(
    server: SpecServer, fake: FakeResend
) -> None:
    messages = [make_message(i, to_name=f'Мария "Енергия" Петрова {i}') for i in (1, 2, 3)]
    [results] = send(provider_for(server), messages)
    assert statuses(results) == [A, A, A]
    assert [r.provider_message_id for r in results] == [uid(1), uid(2), uid(3)]
    [request] = server.requests
    assert request.headers["idempotency-key"] == request_key(messages)
    assert request.headers["x-batch-validation"] == "permissive"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    first = request.json[0]
    assert first["to"] == ['"Мария \\"Енергия\\" Петрова 1" <reader1@example.org>']
    assert first["from"] == '"Североизточен енергиен клъстер" <news@cluster.example.org>'
    assert first["subject"] == messages[0].subject
    assert first["headers"] == messages[0].headers
    assert "Седмичен бюлетин" in request.body.decode("utf-8")  # not \u-escaped
    assert [d.name for d in fake.delivered] == [m.to_name for m in messages]
    assert fake.delivered[1].tags == {"delivery_id": "2", "edition_id": "3"}


def test_invalid_emails_are_permanent_and_ids_still_line_up(
    server: SpecServer, fake: FakeResend
) -> None:
    messages = [make_message(i) for i in range(1, 6)]
    messages[1] = make_message(2, to_email="reader2.example.org")
    messages[3] = make_message(4, to_email="reader4@")
    [results] = send(provider_for(server), messages)
    assert statuses(results) == [A, P, A, P, A]
    assert [r.provider_message_id for r in results] == [uid(1), None, uid(2), None, uid(3)]
    assert results[1].error is not None and INVALID_TO in results[1].error
    assert "reader2.example.org" in results[1].error
    assert [d.to for d in fake.delivered] == [
        "reader1@example.org",
        "reader3@example.org",
        "reader5@example.org",
    ]


def test_rate_limited_is_retryable_with_retry_after(server: SpecServer, fake: FakeResend) -> None:
    server.script(
        Answer(
            429,
            {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests."},
            headers={"retry-after": "2", "ratelimit-reset": "2"},
        )
    )
    [results] = send(provider_for(server), [make_message(1), make_message(2)])
    assert statuses(results) == [R, R]
    assert results[0].retry_after == 2
    assert results[0].error == "HTTP 429: rate_limit_exceeded: Too many requests."
    assert fake.delivered == []


def test_server_error_once_is_settled_by_the_same_request(
    server: SpecServer, fake: FakeResend
) -> None:
    server.script(Answer(500, {"statusCode": 500, "name": "internal_server_error", "message": "x"}))
    [results] = send(provider_for(server), [make_message(1), make_message(2)])
    assert statuses(results) == [A, A]
    first, second = server.requests
    assert first.body == second.body
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert len(fake.delivered) == 2


def test_server_error_twice_is_retryable(server: SpecServer, fake: FakeResend) -> None:
    error = Answer(503, {"statusCode": 503, "name": "service_unavailable", "message": "Down"})
    server.script(error, error)
    [results] = send(provider_for(server), [make_message(1)])
    assert statuses(results) == [R]
    assert results[0].error == "HTTP 503: service_unavailable: Down"


def test_lost_answer_is_replayed_with_the_real_ids(server: SpecServer, fake: FakeResend) -> None:
    def slow(request: Recorded) -> Answer:
        return replace(fake(request), delay=2.0)

    server.script(slow)
    [results] = send(provider_for(server, timeout=0.3), [make_message(1), make_message(2)])
    assert statuses(results) == [A, A]
    # the second request got the first one's answer back, so the ids are Resend's own
    assert [r.provider_message_id for r in results] == [uid(1), uid(2)]
    assert len(fake.delivered) == 2


def test_recomposed_batch_sent_again_is_not_delivered_twice(
    server: SpecServer, fake: FakeResend
) -> None:
    messages = [make_message(1), make_message(2)]
    again = [replace(m, html=m.html + "<!-- new token -->") for m in messages]
    first, second = send(provider_for(server), messages, again)
    assert statuses(first) == statuses(second) == [A, A]
    assert {r.provider_message_id for r in second} == {f"resend-request:{request_key(messages)}"}
    assert len(fake.delivered) == 2


def test_concurrent_idempotent_request_is_retryable(server: SpecServer) -> None:
    server.script(
        Answer(
            409,
            {
                "statusCode": 409,
                "name": "concurrent_idempotent_requests",
                "message": "Same idempotency key used while original request is still in progress.",
            },
        )
    )
    [results] = send(provider_for(server), [make_message(1)])
    assert statuses(results) == [R]
    assert results[0].error is not None and "still in progress" in results[0].error


def test_timeouts_and_resets(server: SpecServer, fake: FakeResend) -> None:
    server.script(Answer(reset=True))
    [after_reset] = send(provider_for(server), [make_message(1)])
    assert statuses(after_reset) == [A]
    server.script(Answer(200, {}, delay=2.0), Answer(200, {}, delay=2.0))
    [timed_out] = send(provider_for(server, timeout=0.3), [make_message(2)])
    assert statuses(timed_out) == [R]
    assert timed_out[0].error is not None and "no answer" in timed_out[0].error
    assert [d.to for d in fake.delivered] == ["reader1@example.org"]


def test_bad_key_stops_the_run(server: SpecServer) -> None:
    with pytest.raises(ProviderError, match="invalid_api_key"):
        send(ResendProvider("re_wrong", base_url=server.base_url), [make_message(1)])


def test_from_config_and_errors(
    make_config: Callable[..., Settings], server: SpecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = {"name": "resend", "api_key_env": "TEST_RESEND_KEY", "base_url": server.base_url}
    monkeypatch.delenv("TEST_RESEND_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"provider\.api_key_env: .*TEST_RESEND_KEY"):
        build_provider(make_config(provider=table))
    monkeypatch.setenv("TEST_RESEND_KEY", API_KEY)
    with pytest.raises(ConfigError, match=r"provider\.batch_size: 101 is above resend's limit"):
        build_provider(make_config(provider={**table, "batch_size": 101}))
    provider = build_provider(make_config(provider=table))
    assert isinstance(provider, ResendProvider)
    [results] = send(provider, [make_message(1)])
    assert statuses(results) == [A]
