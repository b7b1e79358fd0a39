"""Fixtures for the desk: settings with the desk on, an app on the test store, accounts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from newsletter.web import create_app
from web.desk.desk_helpers import Desk
from web.web_helpers import LOCALES, TestClient


@pytest.fixture
def desk_settings(make_config: Callable[..., Settings], tmp_path: Path) -> Settings:
    """Four locales, one public list, the outbox, the desk on."""
    return make_config(
        locales={"default": "bg", "available": LOCALES},
        lists=[{"name": "members", "description": "Members", "public": True}],
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        web={"base_url": "https://news.example.org"},
        desk={"enabled": True, "login_limit_per_account": 5, "login_limit_per_ip": 50},
    )


@pytest.fixture
def desk(
    desk_settings: Settings, store: Store, signer: TokenSigner, clock: Callable[[], object]
) -> Iterator[Desk]:
    app = create_app(desk_settings, store, signer=signer, clock=clock)  # type: ignore[arg-type]
    with TestClient(app, base_url="https://news.example.org") as client:
        client.headers["Accept-Language"] = "en"  # the staff's other language; bg is default
        yield Desk(client, desk_settings, store, clock, app)  # type: ignore[arg-type]
