"""Sign-up with double opt-in: form, confirmation email through the outbox, confirm link,
consent record, rate limits, no duplicates and no disclosure."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from newsletter.config import Settings
from newsletter.models import SubscriberStatus
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from newsletter.web import create_app
from newsletter.web.guards import RequestLimiter
from web.web_helpers import SECRET, Clock, TestClient, Web, confirm_link, csrf_of, signup


def test_double_opt_in_full_flow(web: Web) -> None:
    page = web.client.get("/subscribe", headers={"accept-language": "de"})
    assert page.status_code == 200 and 'lang="de"' in page.text
    assert "Ich bin damit einverstanden" in page.text and "<script" not in page.text
    assert 'value="members"' not in page.text  # not a public list

    res = signup(web)
    assert res.status_code == 200 and "Check your inbox" in res.text
    sub = web.store.subscribers.find("mila@example.org")
    assert sub is not None and sub.status is SubscriberStatus.PENDING and sub.lists == ()

    [msg] = web.emails()
    assert msg["To"].addresses[0].addr_spec == "mila@example.org"
    assert msg["Content-Language"] == "ru"
    assert "Пожалуйста, подтвердите подписку" in str(msg["Subject"])
    assert "List-Unsubscribe" not in msg
    html = msg.get_body(("html",))
    assert html is not None and "Здравствуйте, Мила Иванова!" in html.get_content()

    link = confirm_link(web)
    shown = web.client.get(link)
    assert shown.status_code == 200 and 'lang="ru"' in shown.text
    assert web.store.subscribers.get(sub.id).status is SubscriberStatus.PENDING  # GET: no change
    res = web.client.post(link, data={"csrf_token": csrf_of(shown.text)})
    assert res.status_code == 200 and "Подписка подтверждена" in res.text
    sub = web.store.subscribers.get(sub.id)
    assert sub.status is SubscriberStatus.ACTIVE
    assert (sub.locale, sub.lists, sub.name) == ("ru", ("events", "news"), "Мила Иванова")
    assert sub.consent_at == web.clock()
    [consent] = web.store.consents.for_subscriber(sub.id)
    assert consent.confirmed_at == web.clock() and consent.requested_at == web.clock()
    assert consent.form_version == web.settings.web.consent_version
    assert consent.consent_text.startswith("I agree that Test Energy Cluster stores")
    assert consent.source == "web:/subscribe" and consent.ip is None
    assert [e.kind for e in web.store.events.for_subscriber(sub.id)] == ["confirmed"]
    # following the link again shows the result; posting again changes nothing
    assert "Подписка подтверждена" in web.client.get(link).text
    again = web.client.post(link, data={"csrf_token": csrf_of(shown.text)})
    assert again.status_code == 200
    assert len(web.store.events.for_subscriber(sub.id)) == 1


def test_same_address_twice_no_duplicate_and_same_answer(web: Web) -> None:
    web.add("ana@example.org", lists=("members",))
    first = signup(web, email="new@example.org")
    known = signup(web, email="ANA@example.org")
    assert first.status_code == known.status_code == 200
    strip = re.compile(r'name="csrf_token" value="[^"]+"')
    assert strip.sub("", first.text) == strip.sub("", known.text)
    assert web.store.subscribers.count() == {"active": 1, "pending": 1}
    ana = web.store.subscribers.find("ana@example.org")
    assert ana is not None and ana.status is SubscriberStatus.ACTIVE and ana.lists == ("members",)
    # the known address gets a confirmation too; confirming adds the chosen lists
    link = confirm_link(web)
    web.client.post(link, data={"csrf_token": csrf_of(web.client.get(link).text)})
    ana = web.store.subscribers.get(ana.id)
    assert ana.lists == ("events", "members", "news") and ana.status is SubscriberStatus.ACTIVE
    assert len(web.store.consents.for_subscriber(ana.id)) == 1


def test_bounced_address_gets_the_same_page_and_no_email(web: Web) -> None:
    web.store.suppressions.add("gone@example.org", "bounced", "webhook:test", web.clock())
    res = signup(web, email="gone@example.org")
    assert res.status_code == 200 and "Check your inbox" in res.text
    assert web.emails() == []
    assert web.store.subscribers.find("gone@example.org") is None


def test_erased_person_can_sign_up_again_by_confirming(web: Web) -> None:
    web.store.suppressions.add("back@example.org", "erased", "web:preferences", web.clock())
    signup(web, email="back@example.org")
    link = confirm_link(web)
    assert web.store.suppressions.contains("back@example.org")  # until confirmed
    web.client.post(link, data={"csrf_token": csrf_of(web.client.get(link).text)})
    assert not web.store.suppressions.contains("back@example.org")
    sub = web.store.subscribers.find("back@example.org")
    assert sub is not None and sub.status is SubscriberStatus.ACTIVE


def test_invalid_form_is_shown_again_with_the_reason(web: Web) -> None:
    for fields, error in (
        ({"consent": ""}, "Please tick the consent box."),
        ({"email": "not-an-address"}, "Please enter a valid email address."),
        ({"lists": []}, "Please choose at least one list."),
        ({"lists": ["members"]}, "Please choose at least one list."),  # not public
        ({"locale": "xx"}, "Please choose a language."),
        ({"name": "x" * 201}, "The name is too long."),
    ):
        res = signup(web, **fields)
        assert res.status_code == 400, fields
        assert 'role="alert"' in res.text and error in res.text
    assert web.store.subscribers.count() == {} and web.emails() == []
    # what was typed is kept
    res = signup(web, email="keep@example.org", consent="")
    assert 'value="keep@example.org"' in res.text


def test_missing_or_foreign_csrf_and_cross_site_origin_are_403(web: Web) -> None:
    data = {"email": "x@example.org", "locale": "en", "lists": ["news"], "consent": "yes"}
    assert web.client.post("/subscribe", data=data).status_code == 403
    sub = web.add()
    other = csrf_of(web.client.get(f"/preferences/{web.token('preferences', sub)}").text)
    assert web.client.post("/subscribe", data={**data, "csrf_token": other}).status_code == 403
    token = csrf_of(web.client.get("/subscribe").text)
    res = web.client.post(
        "/subscribe",
        data={**data, "csrf_token": token},
        headers={"origin": "https://evil.example.com"},
    )
    assert res.status_code == 403
    assert web.store.subscribers.find("x@example.org") is None


def test_rate_limit_per_ip_and_per_address(
    make_config: Callable[..., Settings], store: Store, tmp_path: Path
) -> None:
    settings = make_config(
        locales={"default": "bg", "available": ["bg", "en", "de", "ru"]},
        lists=[{"name": "news", "public": True}, {"name": "events", "public": True}],
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        web={"subscribe_limit_per_ip": 4, "subscribe_limit_per_address": 2},
    )
    app = create_app(settings, store, signer=TokenSigner([SECRET]))
    with TestClient(app) as client, TestClient(app, client=("192.0.2.7", 5000)) as other_ip:
        web = Web(client, settings, store, TokenSigner([SECRET]), Clock(), tmp_path / "outbox")
        # per address: later requests get the same answer, but nothing is recorded or sent
        for _ in range(3):
            assert signup(web).status_code == 200
        sub = store.subscribers.find("mila@example.org")
        assert sub is not None
        assert len(store.consents.for_subscriber(sub.id)) == 2  # one per email sent
        # per IP: the fifth request from this address is refused, another IP goes on
        assert signup(web, email="other@example.org").status_code == 200
        res = signup(web, email="third@example.org", page_lang="de")
        assert res.status_code == 429 and "Zu viele Anfragen" in res.text
        assert res.headers["retry-after"] == str(settings.web.subscribe_limit_window)
        assert store.subscribers.find("third@example.org") is None
        assert signup(web, other_ip, email="third@example.org").status_code == 200
        assert store.subscribers.find("third@example.org") is not None


def test_rate_limiter_window_slides() -> None:
    now = [0.0]
    limiter = RequestLimiter(clock=lambda: now[0])
    assert [limiter.hit("k", 2, 60) for _ in range(3)] == [True, True, False]
    now[0] = 59.0
    assert not limiter.hit("k", 2, 60)
    now[0] = 60.5  # the first two hits left the window
    assert limiter.hit("k", 2, 60) and limiter.hit("k", 2, 60) and not limiter.hit("k", 2, 60)
    assert limiter.hit("other", 2, 60)


def test_confirm_link_expires_and_bad_tokens_are_400(web: Web) -> None:
    signup(web)
    link = confirm_link(web)
    sub = web.store.subscribers.find("mila@example.org")
    assert sub is not None
    for bad in (web.token("unsubscribe", sub), "garbage"):
        assert web.client.get(f"/confirm/{bad}").status_code == 400
        assert web.client.post(f"/confirm/{bad}", data={}).status_code == 400
    # a valid link without the page's CSRF token changes nothing
    assert web.client.post(link, data={}).status_code == 403
    # eight days later the link has expired (the signer's clock moves; the app's stays,
    # so its housekeeping does not purge the sign-up and the token alone is refused)
    later = (web.clock() + timedelta(days=8)).timestamp()
    expired = create_app(
        web.settings, web.store, signer=TokenSigner([SECRET], clock=lambda: later), clock=web.clock
    )
    with TestClient(expired) as client:
        page = client.get(link)
        assert page.status_code == 400
        assert (
            client.post(link, data={"csrf_token": csrf_of(web.client.get(link).text)}).status_code
            == 400
        )
    assert web.store.subscribers.get(sub.id).status is SubscriberStatus.PENDING


def test_consent_ip_recorded_only_when_configured(
    make_config: Callable[..., Settings], store: Store, tmp_path: Path
) -> None:
    settings = make_config(
        lists=[{"name": "news", "public": True}],
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        web={"record_consent_ip": True, "consent_version": "2026-11"},
    )
    app = create_app(settings, store, signer=TokenSigner([SECRET]))
    with TestClient(app) as client:
        page = client.get("/subscribe")
        res = client.post(
            "/subscribe",
            data={
                "csrf_token": csrf_of(page.text),
                "email": "ip@example.org",
                "locale": "bg",
                "lists": "news",
                "consent": "yes",
            },
        )
    assert res.status_code == 200
    sub = store.subscribers.find("ip@example.org")
    assert sub is not None
    [consent] = store.consents.for_subscriber(sub.id)
    assert consent.ip == "testclient" and consent.form_version == "2026-11"
    assert consent.consent_text.startswith("Съгласен/съгласна съм")
