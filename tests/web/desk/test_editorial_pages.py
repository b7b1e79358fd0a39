"""Stories, translations and the next edition through the desk's forms (no browser)."""

from __future__ import annotations

import re

from newsletter.models import NewSubscriber
from web.desk.desk_helpers import Desk


def _story(desk: Desk) -> int:
    token = desk.token("/desk/stories/new")
    res = desk.post(
        "/desk/stories/new",
        {
            "title": "Нова соларна централа във Варна",
            "body": "Клъстерът откри **нова** централа.",
            "lang": "bg",
            "published": "2026-11-29",
            "tags": "solar",
            "action": "save",
        },
        token=token,
    )
    assert res.status_code == 303, res.text
    found = re.search(r"/desk/translations/(\d+)", res.headers["location"])
    assert found
    return int(found.group(1))


def test_markdown_preview_does_not_store(desk: Desk) -> None:
    desk.as_user("editor")
    res = desk.post(
        "/desk/stories/new",
        {
            "title": "T",
            "body": "**bold** <script>alert(1)</script>",
            "lang": "bg",
            "action": "preview",
        },
        token=desk.token("/desk/stories/new"),
    )
    assert res.status_code == 200
    assert "<strong>bold</strong>" in res.text and "<script>alert" not in res.text
    assert desk.store.desk.audit_log()[0].action == "session.login"


def test_write_translate_review_and_see_the_next_edition(desk: Desk) -> None:
    desk.store.subscribers.add(
        NewSubscriber(email="reader@example.org", name="Reader", locale="en", lists=("members",)),
        desk.clock(),
    )
    desk.as_user("editor")
    item_id = _story(desk)
    page = desk.client.get(f"/desk/translations/{item_id}")
    assert page.status_code == 200 and "Нова соларна централа" in page.text
    res = desk.post(
        f"/desk/translations/{item_id}/en/save",
        {"title": "New solar plant in Varna", "body": "The cluster opened a **new** plant."},
        token=desk.token(f"/desk/translations/{item_id}"),
    )
    assert res.status_code == 303, res.text
    page = desk.client.get(f"/desk/translations/{item_id}")
    assert "New solar plant in Varna" in page.text
    plan = desk.client.get("/desk/next/members")
    assert plan.status_code == 200 and "Нова соларна централа" in plan.text
    preview = desk.client.get("/desk/next/members/preview/en")
    assert preview.status_code == 200, preview.text
    assert "New solar plant in Varna" in preview.text
    assert "form-action 'none'" in preview.headers["content-security-policy"]
    bg = desk.client.get("/desk/next/members/preview/bg")
    assert "Нова соларна централа" in bg.text
    actions = [e.action for e in desk.store.desk.audit_log()]
    assert "story.create" in actions and "version.save" in actions


def test_a_translator_edits_only_their_locales(desk: Desk) -> None:
    desk.as_user("editor")
    item_id = _story(desk)
    desk.post("/desk/logout")
    desk.as_user("translator", locales=("de",))
    page = desk.client.get(f"/desk/translations/{item_id}")
    assert page.status_code == 200
    assert f"/translations/{item_id}/de/save" in page.text
    assert f"/translations/{item_id}/en/save" not in page.text
    token = desk.token(f"/desk/translations/{item_id}")
    res = desk.post(
        f"/desk/translations/{item_id}/en/save", {"title": "X", "body": "Y"}, token=token
    )
    assert res.status_code == 403
    assert desk.client.get("/desk/stories").status_code == 403
    assert desk.client.get("/desk/next/members").status_code == 403
    res = desk.post(
        f"/desk/translations/{item_id}/de/save",
        {"title": "Neues Solarkraftwerk", "body": "Text"},
        token=token,
    )
    assert res.status_code == 303


def test_edit_keeps_the_item_and_hide_show_are_audited(desk: Desk) -> None:
    desk.as_user("editor")
    item_id = _story(desk)
    form = desk.client.get(f"/desk/stories/{item_id}/edit")
    assert "Клъстерът откри **нова** централа." in form.text
    res = desk.post(
        f"/desk/stories/{item_id}/edit",
        {
            "title": "Нова централа (поправено)",
            "body": "Друг текст.",
            "lang": "bg",
            "action": "save",
        },
        token=desk.token(f"/desk/stories/{item_id}/edit"),
    )
    assert res.status_code == 303 and res.headers["location"].startswith(
        f"/desk/translations/{item_id}"
    )
    listing = desk.client.get("/desk/stories?source=desk")
    assert "Нова централа (поправено)" in listing.text
    assert desk.post(f"/desk/stories/{item_id}/hide").status_code == 303
    assert "hidden" in desk.client.get("/desk/stories?hidden=yes").text
    assert "Нова централа" not in desk.client.get("/desk/stories?hidden=no").text
    assert desk.post(f"/desk/stories/{item_id}/show").status_code == 303
    actions = [e.action for e in desk.store.desk.audit_log()][:4]
    assert actions == ["item.show", "item.hide", "story.edit", "story.create"]


def test_hostile_story_fields_are_refused_or_made_inert(desk: Desk) -> None:
    desk.as_user("editor")
    res = desk.post(
        "/desk/stories/new",
        {
            "title": "X",
            "body": "text",
            "lang": "bg",
            "image": "javascript:alert(1)",
            "action": "save",
        },
        token=desk.token("/desk/stories/new"),
    )
    assert res.status_code == 400  # one line on the form, nothing stored
    assert "story.create" not in [e.action for e in desk.store.desk.audit_log()]
    res = desk.post(
        "/desk/stories/new",
        {
            "title": "<img src=x onerror=alert(1)>",
            "body": "<script>x()</script>ok",
            "lang": "bg",
            "action": "save",
        },
        token=desk.token("/desk/stories/new"),
    )
    assert res.status_code == 303
    page = desk.client.get(res.headers["location"])
    assert "<img src=x" not in page.text and "<script>x()" not in page.text
