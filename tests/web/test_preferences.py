"""The preference centre: language, lists, pause through CSRF-protected POSTs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from newsletter.audience.segments import recipients
from newsletter.models import EditionStatus, SubscriberStatus
from newsletter.send.engine import Sender
from newsletter.send.providers import OutboxProvider
from web.web_helpers import Web, csrf_of, publish_edition


def _save(web: Web, token: str, **fields: object) -> object:
    page = web.client.get(f"/preferences/{token}")
    data = {"csrf_token": csrf_of(page.text, f"/preferences/{token}"), "action": "save", **fields}
    return web.client.post(f"/preferences/{token}", data=data, follow_redirects=False)


def test_page_shows_joinable_and_own_lists_only(web: Web) -> None:
    sub = web.add(lists=("members",))
    page = web.client.get(f"/preferences/{web.token('preferences', sub)}")
    assert page.status_code == 200
    assert 'lang="bg"' in page.text and sub.email in page.text
    for name in ("news", "events", "members"):
        assert f'value="{name}"' in page.text
    other = web.add("ivo@example.org", lists=("news",))
    page = web.client.get(f"/preferences/{web.token('preferences', other)}")
    assert 'value="members"' not in page.text  # private list: only shown to its members
    assert "<script" not in page.text


def test_change_language_lists_and_pause(web: Web) -> None:
    sub = web.add(lists=("news",))
    token = web.token("preferences", sub)
    res = _save(web, token, locale="de", lists=["events"], pause="4")
    assert res.status_code == 303
    assert res.headers["location"] == f"/preferences/{token}?saved=1"
    stored = web.store.subscribers.get(sub.id)
    assert stored.locale == "de" and stored.lists == ("events",)
    assert stored.paused_until == web.clock() + timedelta(weeks=4)
    page = web.client.get(res.headers["location"])
    assert 'lang="de"' in page.text and "Ihre Einstellungen wurden gespeichert." in page.text
    assert "Pause bis" in page.text  # the running pause is offered to keep
    [event] = web.store.events.for_subscriber(sub.id)
    assert event.kind == "preferences" and event.source == "web:preferences"
    assert event.detail["locale"] == "de" and event.detail["lists"] == ["events"]
    # keeping the pause and changing nothing else records nothing
    assert _save(web, token, locale="de", lists=["events"], pause="keep").status_code == 303
    assert len(web.store.events.for_subscriber(sub.id)) == 1
    # resume
    _save(web, token, locale="de", lists=["events"], pause="0")
    assert web.store.subscribers.get(sub.id).paused_until is None


def test_paused_subscriber_is_not_planned_and_is_skipped_when_sending(web: Web) -> None:
    ana = web.add("ana@example.org", lists=("members",))
    ivo = web.add("ivo@example.org", lists=("members",))
    segment = web.settings.segments[0]
    edition = publish_edition(web.settings, web.store, status=EditionStatus.SENDING)
    web.store.deliveries.plan(edition.id, [(ana.id, "bg"), (ivo.id, "bg")], web.clock())
    assert _save(web, web.token("preferences", ivo), locale="bg", lists=["members"], pause="2")
    planned = [s.email for s in recipients(web.store, segment, now=web.clock())]
    assert planned == ["ana@example.org"]
    later = web.clock() + timedelta(weeks=3)
    assert len(list(recipients(web.store, segment, now=later))) == 2  # the pause ran out
    outbox = web.outbox / "sent"
    sender = Sender.configured(
        web.settings, web.store, OutboxProvider(outbox), web.signer, clock=web.clock
    )
    report = asyncio.run(sender.send(edition))
    assert (report.sent, report.skipped) == (1, 1)
    [written] = outbox.rglob("*.eml")
    assert written.name.endswith("ana@example.org.eml")


def test_missing_or_foreign_csrf_token_is_403_and_changes_nothing(web: Web) -> None:
    sub = web.add()
    other = web.add("ivo@example.org")
    token = web.token("preferences", sub)
    url = f"/preferences/{token}"
    fields = {"action": "save", "locale": "en", "lists": ["events"]}
    assert web.client.post(url, data=fields).status_code == 403
    foreign = csrf_of(web.client.get(f"/preferences/{web.token('preferences', other)}").text)
    assert web.client.post(url, data={**fields, "csrf_token": foreign}).status_code == 403
    # a token of this subscriber, but for another form (export)
    export = csrf_of(web.client.get(url).text, "/export")
    res = web.client.post(url, data={**fields, "csrf_token": export})
    assert res.status_code == 403 and 'lang="bg"' in res.text
    stored = web.store.subscribers.get(sub.id)
    assert stored.locale == "bg" and stored.lists == ("news",)


def test_values_the_form_cannot_offer_are_400(web: Web) -> None:
    sub = web.add()
    token = web.token("preferences", sub)
    for fields in (
        {"locale": "xx", "lists": ["news"]},
        {"locale": "bg", "lists": ["members"]},  # private list the person is not on
        {"locale": "bg", "lists": ["news"], "pause": "3"},  # a length not offered
        {"locale": "bg", "lists": ["news"], "pause": "soon"},
    ):
        res = _save(web, token, **fields)
        assert res.status_code == 400, fields
    stored = web.store.subscribers.get(sub.id)
    assert (stored.locale, stored.lists, stored.paused_until) == ("bg", ("news",), None)
    assert web.store.events.for_subscriber(sub.id) == []


def test_unsubscribed_person_can_subscribe_again(web: Web) -> None:
    sub = web.add()
    web.client.post(
        f"/unsubscribe/{web.token('unsubscribe', sub)}", data={"List-Unsubscribe": "One-Click"}
    )
    token = web.token("preferences", sub)
    page = web.client.get(f"/preferences/{token}")
    data = {"csrf_token": csrf_of(page.text), "action": "resubscribe"}
    assert web.client.post(f"/preferences/{token}", data=data).status_code == 200
    assert web.store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
    kinds = [e.kind for e in web.store.events.for_subscriber(sub.id)]
    assert kinds == ["unsubscribed", "resubscribed"]


def test_bad_preferences_token_is_400(web: Web) -> None:
    sub = web.add()
    for token in (web.token("unsubscribe", sub), "garbage", web.token("preferences", 404)):
        assert web.client.get(f"/preferences/{token}").status_code == 400
        assert web.client.post(f"/preferences/{token}", data={}).status_code == 400


def test_tokenless_pages_of_the_archive_copy_explain(web: Web) -> None:
    for path in ("/preferences", "/unsubscribe"):
        res = web.client.get(path, headers={"accept-language": "en"})
        assert res.status_code == 200 and "use the link at the end of any email" in res.text
