"""Role limits and CSRF on every desk form."""

from __future__ import annotations

import pytest

from newsletter.models import EditionStatus
from web.desk.desk_helpers import Desk
from web.web_helpers import publish_edition


def test_an_editor_cannot_manage_users(desk: Desk) -> None:
    desk.as_user("editor")
    assert desk.client.get("/desk/users").status_code == 403
    res = desk.post(
        "/desk/users", {"email": "new@example.org", "role": "admin", "password": "x" * 12}
    )
    assert res.status_code == 403
    assert desk.store.desk.find_user("new@example.org") is None
    # and the navigation does not offer it
    assert "/desk/users" not in desk.client.get("/desk/").text


def test_an_admin_manages_users_and_it_is_audited(desk: Desk) -> None:
    desk.as_user("admin")
    res = desk.post(
        "/desk/users",
        {"email": "Tr@Example.org", "role": "translator", "locales": ["de"], "password": "x" * 12},
        token=desk.token("/desk/users"),
    )
    assert res.status_code == 303
    user = desk.store.desk.find_user("tr@example.org")
    assert user is not None and user.role == "translator" and user.locales == ("de",)
    entry = desk.store.desk.audit_log()[0]
    assert (entry.actor, entry.action, entry.target) == (
        "admin@example.org",
        "user.add",
        "tr@example.org",
    )
    assert desk.post("/desk/users/remove", {"email": "tr@example.org"}).status_code == 303
    assert desk.store.desk.find_user("tr@example.org") is None


def test_a_translator_cannot_approve_or_touch_editions(desk: Desk) -> None:
    edition = publish_edition(desk.settings, desk.store, status=EditionStatus.SENDING)
    desk.as_user("translator", locales=("en",))
    assert desk.client.get("/desk/").status_code == 200
    for path in ("approve", "pause", "cancel", "resume"):
        assert desk.post(f"/desk/editions/{edition.id}/{path}").status_code == 403
    assert desk.store.editions.get(edition.id).status is EditionStatus.SENDING
    assert desk.client.get("/desk/subscribers").status_code == 403
    assert desk.client.get("/desk/audit").status_code == 403


def test_only_admins_resend_unknown_rows(desk: Desk) -> None:
    edition = publish_edition(desk.settings, desk.store)
    desk.as_user("editor")
    assert desk.post(f"/desk/editions/{edition.id}/resend-unknown").status_code == 403


@pytest.mark.parametrize("token", ["", "forged-token", "other-session"])
def test_forms_without_the_sessions_csrf_token_are_refused(desk: Desk, token: str) -> None:
    edition = publish_edition(desk.settings, desk.store, status=EditionStatus.SENDING)
    desk.as_user("editor")
    if token == "other-session":
        # a genuine token, but of another session of the same user
        from web.desk.desk_helpers import form_token
        from web.web_helpers import TestClient

        with TestClient(desk.app, base_url="https://news.example.org") as other:
            desk.login("editor@example.org", client=other)
            token = form_token(other.get("/desk/").text)
    res = desk.post(f"/desk/editions/{edition.id}/pause", token=token)
    assert res.status_code == 403
    assert desk.store.editions.get(edition.id).status is EditionStatus.SENDING
    res = desk.post(f"/desk/editions/{edition.id}/pause")
    assert res.status_code == 303
    assert desk.store.editions.get(edition.id).status is EditionStatus.PAUSED
    assert desk.store.desk.audit_log()[0].action == "edition.pause"


def test_login_form_needs_its_token(desk: Desk) -> None:
    desk.user()
    res = desk.client.post(
        "/desk/login",
        data={"email": "ana@example.org", "password": "a long enough password"},
        follow_redirects=False,
    )
    assert res.status_code == 403


def test_desk_is_off_unless_enabled(make_config, store) -> None:  # type: ignore[no-untyped-def]
    from newsletter.web import create_app
    from web.web_helpers import TestClient

    app = create_app(make_config(), store)
    with TestClient(app, base_url="https://news.example.org") as client:
        assert client.get("/desk/login").status_code == 404
