"""The route itself: unknown providers, methods, content types, body limit; the config
table; our Message-ID as a fallback reference."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.models import SubscriberStatus
from newsletter.send.mime import make_message_id
from newsletter.send.providers.events.model import parse_message_id, refs
from newsletter.store import Store
from newsletter.web.webhooks import VERIFIERS, routes

from .conftest import add_subscriber, mailgun_call, mailgun_failed, webhook_rows

MakeClient = Callable[..., TestClient]


@pytest.fixture
def client(make_store_client: MakeClient) -> TestClient:
    table = {"max_body_bytes": 2048, "mailgun": {"signing_key_env": "MG"}}
    return make_store_client(table, {"MG": "key-1"})


def test_unknown_unconfigured_and_wrong_method(
    client: TestClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="newsletter.web.webhooks"):
        response = client.post("/webhooks/nosuchprovider", json={})
    assert response.status_code == 404
    assert response.json() == {"error": "unknown or unconfigured webhook provider"}
    assert "'nosuchprovider' refused (404)" in caplog.text
    # a supported provider without a [webhooks.<name>] table has no endpoint
    assert client.post("/webhooks/sendgrid", json=[]).status_code == 404
    assert client.get("/webhooks/mailgun").status_code == 405
    assert webhook_rows(store) == 0


def test_body_limit_with_and_without_content_length(client: TestClient, store: Store) -> None:
    add_subscriber(store, "ana@example.org")
    data = mailgun_failed("ana@example.org", padding="x" * 4096)
    response = client.post("/webhooks/mailgun", json=mailgun_call("key-1", data))
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"signature": {}, "event-data": {"padding": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}}'

    chunked = client.post(
        "/webhooks/mailgun", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    assert not store.suppressions.contains("ana@example.org")


def test_every_provider_is_registered_and_built_only_when_configured(
    make_config: Callable[..., Settings], store: Store
) -> None:
    assert sorted(VERIFIERS) == ["brevo", "mailgun", "postmark", "resend", "sendgrid", "ses"]
    settings = make_config()
    (route,) = routes(settings, store)
    assert route.path == "/webhooks/{provider}"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"webhooks\.mailgun\.signing_key_env"):
        routes(make_config(webhooks={"mailgun": {}}), store, environ={})
    with pytest.raises(ConfigError, match="not valid"):
        routes(
            make_config(webhooks={"sendgrid": {}}),
            store,
            environ={"SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"},
        )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"ses": {"topic_arns": ["arn:aws:sqs:eu-central-1:1:x"]}}, "webhooks.ses.topic_arns"),
        ({"ses": {"topic_arns": []}}, "webhooks.ses.topic_arns"),
        (
            {"ses": {"topic_arns": ["arn:aws:sns:eu-central-1:123456789012:t"], "regions": ["x"]}},
            "regions",
        ),
        ({"mailgun": {"signing_key_env": "not a name"}}, "webhooks.mailgun.signing_key_env"),
        ({"postmark": {}}, "webhooks.postmark.secret_env: required"),
        ({"postmark": {"auth": "digest", "secret_env": "A"}}, "webhooks.postmark.auth"),
        (
            {"postmark": {"secret_env": "A"}, "brevo": {"secret_env": "A"}},
            "must not share one secret_env",
        ),
        ({"tolerance_seconds": 0}, "webhooks.tolerance_seconds"),
        ({"sendgird": {}}, "webhooks.sendgird: unknown key"),
    ],
)
def test_config_errors_name_the_key(
    make_config: Callable[..., Settings], table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(webhooks=table)
    assert message in str(info.value)
    assert str(info.value).startswith(str(Path.cwd().anchor))


def test_ses_regions_default_to_the_topic_regions(make_config: Callable[..., Settings]) -> None:
    topics = ["arn:aws:sns:eu-central-1:123456789012:a", "arn:aws:sns:eu-west-1:123456789012:b"]
    settings = make_config(webhooks={"ses": {"topic_arns": topics}})
    assert settings.webhooks.ses is not None
    assert settings.webhooks.ses.allowed_regions() == {"eu-central-1", "eu-west-1"}


def test_our_message_id_identifies_edition_and_subscriber() -> None:
    ours = make_message_id("cluster.example.org", 12, 345)
    assert parse_message_id(ours) == (12, 345)
    assert parse_message_id(ours.strip("<>")) == (12, 345)
    forged = ours.replace(".345.", ".346.")
    assert parse_message_id(forged) is None
    assert parse_message_id("<14c5d75ce93.dfd.64b469@ismtpd-555>") is None
    assert refs({"edition_id": "3", "subscriber_id": "7", "delivery_id": "x"}, ours) == {
        "edition_id": 3,
        "subscriber_id": 7,
        "delivery_id": None,
    }
    assert refs({}, ours) == {"edition_id": 12, "subscriber_id": 345, "delivery_id": None}


def test_mounted_in_the_web_app(
    make_config: Callable[..., Settings], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.web import create_app

    monkeypatch.setenv("NEWSLETTER_TEST_MG_KEY", "key-app")
    settings = make_config(webhooks={"mailgun": {"signing_key_env": "NEWSLETTER_TEST_MG_KEY"}})
    sub = add_subscriber(store, "ana@example.org")
    with TestClient(create_app(settings, store)) as app_client:
        body = mailgun_call("key-app", mailgun_failed("ana@example.org"))
        assert app_client.post("/webhooks/mailgun", json=body).status_code == 200
        assert app_client.post("/webhooks/mailgun", json=body).status_code == 409
        assert app_client.post("/webhooks/nosuchprovider", json={}).status_code == 404
    assert store.subscribers.get(sub.id).status is SubscriberStatus.BOUNCED
