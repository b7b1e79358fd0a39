"""Every desk page: labelled inputs, a skip link, ``lang``, Bulgarian from the catalogs."""

from __future__ import annotations

import re

from newsletter.models import EditionStatus, NewSubscriber
from web.desk.desk_helpers import Desk
from web.web_helpers import publish_edition

_FIELD = re.compile(r"<(input|select|textarea)\b([^>]*)>", re.S)


def _unlabelled(html: str) -> list[str]:
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
    bad = []
    for tag, attrs in _FIELD.findall(html):
        if re.search(r'type="(hidden|submit)"', attrs):
            continue
        found = re.search(r'\bid="([^"]+)"', attrs)
        named = (found and found.group(1) in labelled) or "aria-label=" in attrs
        # a checkbox inside its own <label> is labelled too
        if not named and 'type="checkbox"' not in attrs:
            bad.append(f"<{tag}{attrs}>")
    return bad


def test_every_field_of_every_page_has_a_label(desk: Desk) -> None:
    sub = desk.store.subscribers.add(
        NewSubscriber(email="mila@example.org", locale="bg", lists=("members",)), desk.clock()
    )
    edition = publish_edition(desk.settings, desk.store, status=EditionStatus.SENDING)
    desk.as_user("admin")
    saved = desk.post(
        "/desk/stories/new",
        {"title": "Заглавие", "body": "Текст", "lang": "bg", "action": "save"},
        token=desk.token("/desk/stories/new"),
    )
    story = saved.headers["location"].split("?")[0]  # /desk/translations/{item}
    paths = [
        "/desk/",
        "/desk/stories",
        "/desk/stories/new",
        "/desk/translations",
        story,
        story.replace("translations", "stories") + "/edit",
        "/desk/next/members",
        "/desk/editions",
        f"/desk/editions/{edition.id}",
        "/desk/subscribers",
        f"/desk/subscribers/{sub.id}",
        f"/desk/subscribers/{sub.id}/erase",
        "/desk/users",
        "/desk/audit",
    ]
    for path in paths:
        page = desk.client.get(path)
        assert page.status_code == 200, path
        html = page.text
        assert '<a class="skip" href="#main">' in html and 'id="main"' in html, path
        assert re.search(r'<html lang="en"', html), path
        assert not _unlabelled(html), (path, _unlabelled(html))


def test_the_desk_speaks_bulgarian_and_remembers_the_choice(desk: Desk) -> None:
    page = desk.client.get("/desk/login", headers={"Accept-Language": "bg"})
    assert '<html lang="bg"' in page.text and "Вход в редакцията" in page.text
    desk.user()
    desk.login()
    page = desk.client.get("/desk/?lang=bg")
    assert "Табло" in page.text and "Изход" in page.text
    # no ?lang= any more, an English browser: the pick is remembered
    page = desk.client.get("/desk/subscribers")
    assert "Абонати" in page.text
