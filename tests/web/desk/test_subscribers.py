"""Subscribers in the desk: search, a person's page, changes, erase, import, export."""

from __future__ import annotations

from newsletter.models import NewSubscriber, SubscriberStatus
from web.desk.desk_helpers import Desk


def _add(desk: Desk, email: str = "mila@example.org", name: str = "Мила Иванова") -> int:
    sub = desk.store.subscribers.add(
        NewSubscriber(email=email, name=name, locale="bg", lists=("members",)),
        desk.clock(),
    )
    return sub.id


def test_search_and_a_persons_page(desk: Desk) -> None:
    sub_id = _add(desk)
    _add(desk, "petar@example.org", "Петър Петров")
    desk.as_user("editor")
    page = desk.client.get("/desk/subscribers?q=мила")
    assert "mila@example.org" in page.text and "petar@example.org" not in page.text
    page = desk.client.get(f"/desk/subscribers/{sub_id}")
    assert page.status_code == 200 and "Мила Иванова" in page.text
    assert desk.client.get("/desk/subscribers/99999").status_code == 404
    assert desk.client.get("/desk/subscribers/1e9").status_code == 404


def test_change_and_unsubscribe_are_audited_and_in_the_history(desk: Desk) -> None:
    sub_id = _add(desk)
    desk.as_user("editor")
    token = desk.token(f"/desk/subscribers/{sub_id}")
    res = desk.post(
        f"/desk/subscribers/{sub_id}",
        {"name": "Mila I.", "locale": "en", "lists": ["members", "nonexistent"]},
        token=token,
    )
    assert res.status_code == 303
    sub = desk.store.subscribers.get(sub_id)
    assert (sub.name, sub.locale, sub.lists) == ("Mila I.", "en", ("members",))
    assert desk.post(f"/desk/subscribers/{sub_id}/unsubscribe", token=token).status_code == 303
    assert desk.store.subscribers.get(sub_id).status is SubscriberStatus.UNSUBSCRIBED
    kinds = [e.kind for e in desk.store.events.for_subscriber(sub_id)]
    assert kinds == ["preferences", "unsubscribed"]
    actions = [e.action for e in desk.store.desk.audit_log()][:2]
    assert actions == ["subscriber.unsubscribe", "subscriber.change"]


def test_erase_needs_the_address_typed_again(desk: Desk) -> None:
    sub_id = _add(desk)
    desk.as_user("editor")
    assert "Type the address" in desk.client.get(f"/desk/subscribers/{sub_id}/erase").text
    res = desk.post(f"/desk/subscribers/{sub_id}/erase", {"confirm": "someone@example.org"})
    assert res.status_code == 400
    assert desk.store.subscribers.find("mila@example.org") is not None
    res = desk.post(f"/desk/subscribers/{sub_id}/erase", {"confirm": "Mila@example.org"})
    assert res.status_code == 303
    assert desk.store.subscribers.find("mila@example.org") is None
    assert desk.store.suppressions.contains("mila@example.org")
    # the trail names the record, not the erased address
    assert "mila" not in str(desk.store.desk.audit_log()[0])


def test_csv_import_by_upload_reports_rows_and_export(desk: Desk) -> None:
    desk.as_user("editor")
    csv = "email,name,locale\nnew@example.org,Нов Човек,bg\nnot-an-address,X,bg\n"
    res = desk.client.post(
        "/desk/subscribers/import",
        data={"csrf_token": desk.token("/desk/subscribers"), "list": "members"},
        files={"file": ("people.csv", csv.encode("utf-8"), "text/csv")},
    )
    assert res.status_code == 200, res.text
    assert "2 row(s): 1 added" in res.text
    assert "people.csv: line 3" in res.text
    sub = desk.store.subscribers.find("new@example.org")
    assert sub is not None and sub.lists == ("members",)
    out = desk.client.get("/desk/subscribers/export.csv")
    assert out.headers["content-type"].startswith("text/csv")
    assert "new@example.org" in out.text


def test_upload_without_the_token_is_refused(desk: Desk) -> None:
    desk.as_user("editor")
    res = desk.client.post(
        "/desk/subscribers/import",
        data={"csrf_token": "nope"},
        files={"file": ("people.csv", b"email\nx@example.org\n", "text/csv")},
    )
    assert res.status_code == 403
    assert desk.store.subscribers.find("x@example.org") is None


def test_pages_render_for_an_admin(desk: Desk) -> None:
    desk.as_user("admin")
    for path in ("/desk/", "/desk/users", "/desk/audit", "/desk/editions", "/desk/subscribers"):
        page = desk.client.get(path)
        assert page.status_code == 200, path
        assert 'href="#main"' in page.text and '<html lang="' in page.text


def test_an_upload_over_the_limit_is_refused_unread(desk: Desk) -> None:
    from newsletter.web.desk.subscribers import MAX_UPLOAD

    desk.as_user("editor")
    big = b"email\n" + b"x@example.org\n" * (MAX_UPLOAD // 14 + 1)
    res = desk.client.post(
        "/desk/subscribers/import",
        data={"csrf_token": desk.token("/desk/subscribers")},
        files={"file": ("big.csv", big, "text/csv")},
    )
    assert res.status_code == 413
