"""RFC 8058 one-click unsubscribe: POST unsubscribes, GET changes nothing, bad tokens 400."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from newsletter.models import DeliveryStatus, EditionStatus, SubscriberStatus
from newsletter.send.engine import Sender
from newsletter.send.providers import OutboxProvider
from newsletter.send.tokens import TokenSigner
from newsletter.web import create_app
from web.web_helpers import TestClient, Web, publish_edition

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def test_get_shows_a_button_and_changes_nothing(web: Web) -> None:
    sub = web.add()
    token = web.token("unsubscribe", sub, 3)
    page = web.client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'lang="bg"' in page.text and "Отписване" in page.text
    assert page.text.count("<button") == 1
    assert f'action="/unsubscribe/{token}"' in page.text
    assert web.store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    assert web.store.events.for_subscriber(sub.id) == []
    assert "<script" not in page.text
    assert page.headers["referrer-policy"] == "same-origin"


def test_one_click_post_unsubscribes_without_cookies_and_records_it(web: Web) -> None:
    sub = web.add()
    token = web.token("unsubscribe", sub, 7)
    web.client.cookies.clear()
    res = web.client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    assert res.status_code == 200
    assert "set-cookie" not in res.headers
    stored = web.store.subscribers.get(sub.id)
    assert stored.status is SubscriberStatus.UNSUBSCRIBED
    [event] = web.store.events.for_subscriber(sub.id)
    assert (event.kind, event.source, event.detail) == (
        "unsubscribed",
        "web:one-click",
        {"edition_id": 7},
    )
    assert event.created_at == web.clock()
    # a second POST (a client retrying) is fine and records nothing new
    assert web.client.post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 200
    assert len(web.store.events.for_subscriber(sub.id)) == 1


def test_multipart_one_click_body_is_accepted(web: Web) -> None:
    sub = web.add()
    res = web.client.post(
        f"/unsubscribe/{web.token('unsubscribe', sub)}",
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert res.status_code == 200
    assert web.store.subscribers.get(sub.id).status is SubscriberStatus.UNSUBSCRIBED


def test_page_button_records_its_source(web: Web) -> None:
    sub = web.add()
    res = web.client.post(
        f"/unsubscribe/{web.token('unsubscribe', sub)}", data={**ONE_CLICK, "via": "page"}
    )
    assert res.status_code == 200
    assert web.store.events.for_subscriber(sub.id)[0].source == "web:page"


def test_post_without_the_one_click_body_changes_nothing(web: Web) -> None:
    sub = web.add()
    url = f"/unsubscribe/{web.token('unsubscribe', sub)}"
    for body in ({}, {"List-Unsubscribe": "Two-Clicks"}):
        assert web.client.post(url, data=body).status_code == 400, body
    res = web.client.post(
        url, content="List-Unsubscribe=One-Click", headers={"content-type": "text/plain"}
    )
    assert res.status_code == 400
    assert web.store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE


def _bad_tokens(web: Web) -> dict[str, str]:
    sub = web.add()
    good = web.token("unsubscribe", sub)
    return {
        "tampered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "wrong-purpose": web.token("preferences", sub),
        "unknown-subscriber": web.token("unsubscribe", 9999),
        "garbage": "not-a-token",
    }


def test_bad_token_is_a_localized_400_page(web: Web) -> None:
    for (kind, token), method in itertools.product(_bad_tokens(web).items(), ("GET", "POST")):
        res = web.client.request(
            method,
            f"/unsubscribe/{token}",
            data=ONE_CLICK if method == "POST" else None,
            headers={"accept-language": "de-DE,de;q=0.9,en;q=0.5"},
        )
        assert res.status_code == 400, (method, kind)
        assert 'lang="de"' in res.text
        assert "Dieser Link ist ungültig" in res.text
        assert "Traceback" not in res.text
    assert web.store.subscribers.get(1).status is SubscriberStatus.ACTIVE


def test_accept_language_falls_back_to_default_locale(web: Web) -> None:
    res = web.client.get("/unsubscribe/x", headers={"accept-language": "ja, fr;q=0.8"})
    assert res.status_code == 400 and 'lang="bg"' in res.text
    res = web.client.get("/unsubscribe/x", headers={"accept-language": "ru-RU;q=0.9, en;q=0.8"})
    assert 'lang="ru"' in res.text and "Эта ссылка недействительна" in res.text


def test_unsubscribed_reader_gets_nothing_more_from_an_edition_still_sending(web: Web) -> None:
    """Rows are planned for both, one unsubscribes mid-send: the sender skips their row."""
    ana = web.add("ana@example.org", lists=("members",))
    ivo = web.add("ivo@example.org", lists=("members",))
    edition = publish_edition(web.settings, web.store, status=EditionStatus.SENDING)
    web.store.deliveries.plan(edition.id, [(ana.id, "bg"), (ivo.id, "bg")], web.clock())
    res = web.client.post(
        f"/unsubscribe/{web.token('unsubscribe', ivo, edition.id)}", data=ONE_CLICK
    )
    assert res.status_code == 200
    outbox = web.outbox / "sent"
    sender = Sender.configured(
        web.settings, web.store, OutboxProvider(outbox), web.signer, clock=web.clock
    )
    report = asyncio.run(sender.send(edition))
    assert (report.sent, report.skipped) == (1, 1)
    written = [p.name for p in outbox.rglob("*.eml")]
    assert len(written) == 1 and "ana@example.org" in written[0]
    assert web.store.deliveries.counts(edition.id)[DeliveryStatus.SKIPPED] == 1


def test_token_signed_with_an_old_key_still_works(web: Web) -> None:
    """Key rotation: the app verifies with every configured key."""
    sub = web.add()
    old = TokenSigner(["old-key"]).sign("unsubscribe", sub.id)
    assert web.client.get(f"/unsubscribe/{old}").status_code == 400  # not configured yet
    rotated = TokenSigner(["new-key", "old-key"])
    app = create_app(web.settings, web.store, signer=rotated, clock=web.clock)
    with TestClient(app) as client:
        assert client.post(f"/unsubscribe/{old}", data=ONE_CLICK).status_code == 200
    assert web.store.subscribers.get(sub.id).status is SubscriberStatus.UNSUBSCRIBED


def test_logs_never_hold_a_link_token(web: Web, caplog: pytest.LogCaptureFixture) -> None:
    """A preferences token never expires: a log line with one would hand over the account."""
    sub = web.add()
    token = web.token("preferences", sub)
    with caplog.at_level(logging.INFO, logger="newsletter.web"):
        web.client.post(f"/preferences/{token}", data={"action": "save"})  # no CSRF: 403
        web.client.post(f"/preferences/{token}", content=b"x", headers={"content-type": "x/y"})
        web.client.get(f"/preferences/{token}/erase")  # 405
        web.client.get(f"/no-such-page/{token}")  # 404, no route matched
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) >= 4 and not any(token in line for line in lines), lines
    assert any("/preferences/{token}" in line for line in lines)
    assert any("/no-such-page/…" in line for line in lines)
