"""Brevo provider against a local server validating every request with Brevo's own spec."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

import pytest

from newsletter.config import Settings
from newsletter.errors import ConfigError, ProviderError
from newsletter.models import ResultStatus
from newsletter.send.providers import build_provider
from newsletter.send.providers.brevo import BrevoProvider
from newsletter.send.providers.idempotency import request_key
from send.providers.fake_brevo import API_KEY, FakeBrevo, serve
from send.providers.specserver import Answer, Recorded, SpecServer
from send.providers.support import StandIn, make_message, statuses
from send.providers.support import send_batches as send

A, P, R = ResultStatus.ACCEPTED, ResultStatus.PERMANENT, ResultStatus.RETRYABLE


@pytest.fixture
def fake() -> FakeBrevo:
    return FakeBrevo()


STAND_IN = StandIn(serve, with_fake=True)


def provider_for(server: SpecServer, **options: object) -> BrevoProvider:
    settings: dict[str, object] = {"base_url": server.base_url, "timeout": 5, "resend_pause": 0}
    settings.update(options)
    return BrevoProvider(API_KEY, **settings)  # type: ignore[arg-type]


def test_default_mode_one_request_per_message_with_our_headers(
    server: SpecServer, fake: FakeBrevo
) -> None:
    messages = [make_message(i, to_name=f"Иван Петров {i}") for i in (1, 2, 3)]
    [results] = send(provider_for(server), messages)
    assert statuses(results) == [A, A, A]
    assert len({r.provider_message_id for r in results}) == 3
    assert len(server.requests) == 3
    by_to = {r.json["to"][0]["email"]: r.json for r in server.requests}
    for msg in messages:
        body = by_to[msg.to_email]
        assert "messageVersions" not in body
        assert body["to"] == [{"email": msg.to_email, "name": msg.to_name}]
        assert body["sender"] == {"email": msg.from_email, "name": msg.from_name}
        assert body["subject"] == msg.subject  # Cyrillic travels as UTF-8 JSON, unescaped
        assert body["headers"]["List-Unsubscribe"] == msg.headers["List-Unsubscribe"]
        assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # a one-message request carries that message's own key
        assert body["headers"]["idempotencyKey"] == request_key([msg])
        assert body["tags"] == ["edition-3"]
    raw = server.requests[0].body.decode("utf-8")
    assert "Седмичен бюлетин" in raw
    assert sorted(d.to for d in fake.delivered) == [m.to_email for m in messages]
    assert all(d.headers["List-Unsubscribe"].startswith("<https://") for d in fake.delivered)


def test_brevo_mode_sends_message_versions_in_one_request(
    server: SpecServer, fake: FakeBrevo
) -> None:
    messages = [make_message(i) for i in range(1, 6)]
    [results] = send(provider_for(server, unsubscribe_header="brevo"), messages)
    assert statuses(results) == [A] * 5
    [request] = server.requests
    body = request.json
    assert [v["to"][0]["email"] for v in body["messageVersions"]] == [m.to_email for m in messages]
    assert [v["htmlContent"] for v in body["messageVersions"]] == [m.html for m in messages]
    assert "List-Unsubscribe" not in body["headers"]
    key = body["headers"]["idempotencyKey"]
    assert uuid.UUID(key) and key == request_key(reversed(messages))  # order does not matter
    # Brevo's messageIds are per version, in order
    assert [r.provider_message_id for r in results] == [
        f"<20261128.{i}@smtp-relay.mailin.fr>" for i in range(1, 6)
    ]
    assert [d.to for d in fake.delivered] == [m.to_email for m in messages]


def test_requests_stay_under_the_payload_cap(server: SpecServer) -> None:
    messages = [make_message(i, html="<p>" + "Енергия " * 200 + "</p>") for i in range(1, 7)]
    size = len(messages[0].html.encode()) + len(messages[0].text.encode())
    provider = provider_for(server, unsubscribe_header="brevo", max_payload=size * 2 + 500)
    [results] = send(provider, messages)
    assert statuses(results) == [A] * 6
    assert [len(r.json["messageVersions"]) for r in server.requests] == [2, 2, 2]


def test_invalid_address_in_versions_is_isolated(server: SpecServer, fake: FakeBrevo) -> None:
    messages = [make_message(i) for i in range(1, 9)]
    messages[5] = make_message(6, to_email="читател@")
    [results] = send(provider_for(server, unsubscribe_header="brevo"), messages)
    assert statuses(results) == [A, A, A, A, A, P, A, A]
    assert results[5].error is not None
    assert "email is not valid in to" in results[5].error and "читател@" in results[5].error
    assert sorted(d.to for d in fake.delivered) == sorted(
        m.to_email for i, m in enumerate(messages) if i != 5
    )
    # the halves are sent until the culprit stands alone; every good message exactly once
    assert len(fake.delivered) == 7


def test_rate_limited_is_retryable_with_the_reset_time(server: SpecServer) -> None:
    server.script(
        Answer(
            429,
            {"code": "too_many_requests", "message": "Too many requests"},
            headers={"x-sib-ratelimit-limit": "1000", "x-sib-ratelimit-reset": "7"},
        )
    )
    [results] = send(provider_for(server), [make_message(1)])
    assert statuses(results) == [R]
    assert results[0].retry_after == 7
    assert results[0].error is not None and "Too many requests" in results[0].error


def test_one_server_error_is_settled_by_resending_the_same_request(
    server: SpecServer, fake: FakeBrevo
) -> None:
    server.script(Answer(500, {"code": "internal_error", "message": "Internal error"}))
    [results] = send(
        provider_for(server, unsubscribe_header="brevo"), [make_message(1), make_message(2)]
    )
    assert statuses(results) == [A, A]
    first, second = server.requests
    assert first.body == second.body  # the very same request, same idempotencyKey
    assert len(fake.delivered) == 2


def test_two_server_errors_are_retryable(server: SpecServer, fake: FakeBrevo) -> None:
    error = Answer(
        502, {"code": "bad_gateway", "message": "Bad gateway"}, headers={"Retry-After": "3"}
    )
    server.script(error, error)
    [results] = send(provider_for(server), [make_message(1)])
    assert statuses(results) == [R]
    assert results[0].retry_after == 3
    assert results[0].error is not None and "Bad gateway" in results[0].error
    assert fake.delivered == []


def test_answer_lost_after_processing_is_not_delivered_twice(
    server: SpecServer, fake: FakeBrevo
) -> None:
    def slow(request: Recorded) -> Answer:
        # Brevo processes the request, but its answer comes after the client gave up
        return replace(fake(request), delay=2.0)

    server.script(slow)
    messages = [make_message(1), make_message(2)]
    [results] = send(provider_for(server, unsubscribe_header="brevo", timeout=0.3), messages)
    key = request_key(messages)
    assert statuses(results) == [A, A]
    assert {r.provider_message_id for r in results} == {f"brevo-request:{key}"}
    assert [d.to for d in fake.delivered] == [m.to_email for m in messages]


def test_connection_reset_then_success(server: SpecServer, fake: FakeBrevo) -> None:
    server.script(Answer(reset=True))
    [results] = send(provider_for(server), [make_message(1)])
    assert statuses(results) == [A]
    assert len(server.requests) == 2 and len(fake.delivered) == 1


def test_slow_answers_past_the_timeout_are_retryable(server: SpecServer, fake: FakeBrevo) -> None:
    server.script(Answer(201, {"messageId": "<x>"}, delay=2.0), Answer(201, {}, delay=2.0))
    [results] = send(provider_for(server, timeout=0.3), [make_message(1)])
    assert statuses(results) == [R]
    assert results[0].error is not None and "Timeout" in results[0].error


def test_same_batch_sent_again_after_a_restart_is_not_delivered_twice(
    server: SpecServer, fake: FakeBrevo
) -> None:
    messages = [make_message(1), make_message(2), make_message(3)]
    # the second run re-composes the messages: new tokens, same idempotency keys
    again = [replace(m, html=m.html + "<!-- recomposed -->") for m in reversed(messages)]
    first, second = send(provider_for(server, unsubscribe_header="brevo"), messages, again)
    assert statuses(first) == statuses(second) == [A, A, A]
    assert len(fake.delivered) == 3
    assert all(r.provider_message_id == f"brevo-request:{request_key(messages)}" for r in second)


def test_account_problems_stop_the_run(server: SpecServer) -> None:
    server.script(Answer(400, {"code": "not_enough_credits", "message": "Not enough credits"}))
    with pytest.raises(ProviderError, match="not_enough_credits"):
        send(provider_for(server), [make_message(1)])


def test_wrong_key_stops_the_run(server: SpecServer) -> None:
    provider = BrevoProvider("wrong", base_url=server.base_url, timeout=5)
    with pytest.raises(ProviderError, match="Key not found"):
        send(provider, [make_message(1)])


def test_from_config(
    make_config: Callable[..., Settings],
    server: SpecServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_BREVO_KEY", API_KEY)
    table = {
        "name": "brevo",
        "api_key_env": "TEST_BREVO_KEY",
        "base_url": server.base_url,
        "unsubscribe_header": "brevo",
        "tags": ["newsletter"],
    }
    provider = build_provider(make_config(provider=table))
    assert isinstance(provider, BrevoProvider)
    [results] = send(provider, [make_message(1), make_message(2)])
    assert statuses(results) == [A, A]
    assert server.requests[0].json["tags"] == ["newsletter", "edition-3"]


def test_config_errors_name_the_key(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_BREVO_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"provider\.api_key_env: .*TEST_BREVO_KEY"):
        build_provider(make_config(provider={"name": "brevo", "api_key_env": "TEST_BREVO_KEY"}))
    monkeypatch.setenv("TEST_BREVO_KEY", API_KEY)
    over = {"name": "brevo", "api_key_env": "TEST_BREVO_KEY", "batch_size": 1001}
    with pytest.raises(ConfigError, match=r"provider\.batch_size: 1001 is above brevo's limit"):
        build_provider(make_config(provider=over))
