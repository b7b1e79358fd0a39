"""Editions in the desk: prepare, approve (editors, not translators), progress, buttons."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.models import EditionStatus, NewSubscriber
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from newsletter.web import create_app
from web.desk.desk_helpers import Desk
from web.web_helpers import LOCALES, Clock, TestClient


@pytest.fixture
def approving(
    make_config: Callable[..., Settings],
    tmp_path: Path,
    store: Store,
    signer: TokenSigner,
    clock: Clock,
) -> Iterator[Desk]:
    """The desk with one segment whose editions wait for approval."""
    settings = make_config(
        locales={"default": "bg", "available": LOCALES},
        lists=[{"name": "members", "description": "Members"}],
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        desk={"enabled": True},
        segments=[
            {
                "name": "members",
                "rules": [{"field": "lists", "op": "contains", "value": "members"}],
                "approval": "required",
            }
        ],
    )
    app = create_app(settings, store, signer=signer, clock=clock)
    with TestClient(app, base_url="https://news.example.org") as client:
        client.headers["Accept-Language"] = "en"  # the staff's other language; bg is default
        yield Desk(client, settings, store, clock, app)


def _prepared(desk: Desk) -> int:
    for n, locale in enumerate(("bg", "en")):
        desk.store.subscribers.add(
            NewSubscriber(email=f"r{n}@example.org", locale=locale, lists=("members",)),
            desk.clock(),
        )
    desk.as_user("editor")
    token = desk.token("/desk/stories/new")
    body = {"title": "Вятърен парк", "body": "Текст.", "lang": "bg", "action": "save"}
    assert desk.post("/desk/stories/new", body, token=token).status_code == 303
    desk.post("/desk/logout")
    desk.client.cookies.clear()
    desk.as_user("admin", "boss@example.org")
    res = desk.post("/desk/next/members/prepare", token=desk.token("/desk/next/members"))
    assert res.status_code == 303
    [edition] = desk.store.editions.list()
    assert edition.status is EditionStatus.AWAITING_APPROVAL
    return edition.id


def test_prepare_then_approve_sends_to_the_outbox(approving: Desk) -> None:
    desk = approving
    edition_id = _prepared(desk)
    page = desk.client.get(f"/desk/editions/{edition_id}")
    assert "Approve and send" in page.text
    res = desk.post(f"/desk/editions/{edition_id}/approve", token=desk.token(page.url.path))
    assert res.status_code == 303
    # the send ran in the app's background (the test client waits for it)
    assert desk.store.editions.get(edition_id).status is EditionStatus.FINISHED
    assert len(list(desk.settings.provider.path.rglob("*.eml"))) == 2  # type: ignore[attr-defined]
    page = desk.client.get(f"/desk/editions/{edition_id}")
    assert "2 / 2" in page.text
    progress = desk.client.get(f"/desk/editions/{edition_id}/progress.json").json()
    assert progress["done"] == progress["total"] == 2
    approve = [e for e in desk.store.desk.audit_log() if e.action == "edition.approve"]
    assert approve[0].actor == "boss@example.org"


def test_a_translator_cannot_approve(approving: Desk) -> None:
    desk = approving
    edition_id = _prepared(desk)
    desk.post("/desk/logout")
    desk.client.cookies.clear()
    desk.as_user("translator", locales=("en",))
    res = desk.post(f"/desk/editions/{edition_id}/approve")
    assert res.status_code == 403
    assert desk.store.editions.get(edition_id).status is EditionStatus.AWAITING_APPROVAL


def test_approving_twice_is_refused_with_one_line(approving: Desk) -> None:
    desk = approving
    edition_id = _prepared(desk)
    token = desk.token(f"/desk/editions/{edition_id}")
    assert desk.post(f"/desk/editions/{edition_id}/approve", token=token).status_code == 303
    res = desk.post(f"/desk/editions/{edition_id}/approve", token=token)
    assert res.status_code == 409 and "not awaiting approval" in res.text
