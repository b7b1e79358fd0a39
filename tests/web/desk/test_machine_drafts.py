"""A machine draft asked for in the desk (a DeepL imitation on 127.0.0.1), then reviewed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from digest.translate_fake import KEY, FakeDeepL

from newsletter.config import Settings
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from newsletter.web import create_app
from web.desk.desk_helpers import Desk
from web.web_helpers import Clock, TestClient


@pytest.fixture
def deepl() -> Iterator[FakeDeepL]:
    fake = FakeDeepL()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def translating(
    make_config: Callable[..., Settings],
    tmp_path: Path,
    store: Store,
    signer: TokenSigner,
    clock: Clock,
    deepl: FakeDeepL,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Desk]:
    monkeypatch.setenv("DEEPL_API_KEY", KEY)
    settings = make_config(
        locales={"default": "bg", "available": ["bg", "en", "de"]},
        lists=[{"name": "members", "description": "Members"}],
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        translation={"enabled": True, "base_url": deepl.url},
        desk={"enabled": True},
    )
    app = create_app(settings, store, signer=signer, clock=clock)
    with TestClient(app, base_url="https://news.example.org") as client:
        client.headers["Accept-Language"] = "en"
        yield Desk(client, settings, store, clock, app)


def test_a_translator_asks_for_a_draft_and_reviews_it(translating: Desk, deepl: FakeDeepL) -> None:
    desk = translating
    desk.as_user("editor")
    res = desk.post(
        "/desk/stories/new",
        {"title": "Вятърен парк", "body": "Текст за парка.", "lang": "bg", "action": "save"},
        token=desk.token("/desk/stories/new"),
    )
    item = res.headers["location"].split("?")[0]
    desk.post("/desk/logout")
    desk.client.cookies.clear()
    desk.as_user("translator", locales=("de",))
    page = desk.client.get(item)
    assert f"{item}/de/machine" in page.text and f"{item}/en/machine" not in page.text
    assert desk.post(f"{item}/en/machine", token=desk.token(item)).status_code == 403
    assert desk.post(f"{item}/de/machine", token=desk.token(item)).status_code == 303
    assert [r["target_lang"] for r in deepl.requests] == ["DE"]
    page = desk.client.get(item)
    assert "[DE] Вятърен парк" in page.text and ">machine-translated<" in page.text
    assert desk.post(f"{item}/de/review", token=desk.token(item)).status_code == 303
    page = desk.client.get(item)
    assert ">reviewed<" in page.text and "Reviewed by translator@example.org" in page.text
    actions = [e.action for e in desk.store.desk.audit_log()][:2]
    assert actions == ["version.review", "version.machine"]
