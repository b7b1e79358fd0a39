"""Fixtures for the web app: settings with public lists, an app on the test store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from newsletter.web import create_app
from web.web_helpers import LOCALES, SECRET, Clock, TestClient, Web


@pytest.fixture
def web_settings(make_config: Callable[..., Settings], tmp_path: Path) -> Settings:
    """Four locales, two public lists and one private, the outbox provider in tmp_path."""
    return make_config(
        locales={"default": "bg", "available": LOCALES},
        lists=[
            {"name": "news", "description": "Weekly news", "public": True},
            {"name": "events", "description": "Events", "public": True},
            {"name": "members", "description": "Members only"},
        ],
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        web={"base_url": "https://news.example.org", "subscribe_limit_per_ip": 50},
    )


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer(clock: Clock) -> TokenSigner:
    # the signer reads the same frozen clock as the app, so token ages are relative to it
    return TokenSigner([SECRET], clock=lambda: clock().timestamp())


@pytest.fixture
def web(web_settings: Settings, store: Store, signer: TokenSigner, clock: Clock) -> Iterator[Web]:
    app = create_app(web_settings, store, signer=signer, clock=clock)
    with TestClient(app, base_url="https://news.example.org") as client:
        yield Web(client, web_settings, store, signer, clock, web_settings.provider.path)
