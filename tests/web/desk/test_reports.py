"""Reports in the desk: editors see the charts (server-side SVG, no script) and the
per-locale table; translators do not; Chromium shows the charts by their titles."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from engagement_seed import NOW, provider_events, seed_edition

from newsletter.config import Settings
from web.desk.desk_helpers import Desk
from web.web_helpers import LOCALES

CHROMIUM = os.environ.get("NEWSLETTER_CHROMIUM", "/usr/bin/chromium")
STORY = "https://cluster.example.org/n/1"


@pytest.fixture
def desk_settings(make_config: Callable[..., Settings], tmp_path: Path) -> Settings:
    """The desk's test settings with click tracking on."""
    return make_config(
        locales={"default": "bg", "available": LOCALES},
        lists=[{"name": "members", "description": "Members", "public": True}],
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        web={"base_url": "https://news.example.org"},
        desk={"enabled": True, "login_limit_per_account": 5, "login_limit_per_ip": 50},
        tracking={"clicks": True},
    )


def _seed(desk: Desk) -> int:
    for week, bounced in (("2026-W46", 1), ("2026-W47", 2)):
        edition, ids = seed_edition(desk.store, week, {"bg": 4})
        provider_events(desk.store, edition, "delivered", ids[bounced:])
        provider_events(desk.store, edition, "hard_bounce", ids[:bounced])
    edition, ids = seed_edition(
        desk.store, "2026-W48", {"bg": 2, "en": 2}, stories=(("Соларен парк", STORY),)
    )
    provider_events(desk.store, edition, "delivered", ids)
    for d in ids[:3]:
        desk.store.engagement.record(
            "clicked", edition_id=edition, locale="bg", delivery_id=d, story=STORY, at=NOW
        )
    return edition


def test_editors_see_the_charts_and_translators_do_not(desk: Desk) -> None:
    edition = _seed(desk)
    desk.as_user("translator", locales=("en",))
    assert desk.client.get("/desk/reports").status_code == 403
    desk.client.cookies.clear()
    desk.as_user("editor")
    page = desk.client.get("/desk/reports")
    assert page.status_code == 200
    assert page.text.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') >= 2
    assert "Delivery and bounce rates over the last editions" in page.text
    assert "<script" not in page.text
    assert "/desk/reports" in page.text  # in the navigation
    one = desk.client.get(f"/desk/reports/{edition}")
    assert one.status_code == 200 and "2026-W48" in one.text
    assert desk.client.get("/desk/reports/999999").status_code == 404
    bg = desk.client.get("/desk/reports?lang=bg")
    assert "Дял на доставените и върнатите писма" in bg.text


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM}")
def test_the_browser_shows_the_desk_charts(desk: Desk, tmp_path: Path) -> None:
    _seed(desk)
    desk.as_user("editor")
    html = desk.client.get("/desk/reports").text
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            view = browser.new_context(java_script_enabled=False).new_page()
            view.set_content(html)
            for name in (
                "Delivery and bounce rates over the last editions",
                "Readers who clicked, per story and language",
                "Translation coverage and clicks per language",
            ):
                chart = view.get_by_role("img", name=name)
                box = chart.bounding_box()
                assert box is not None and box["width"] > 300, name
            assert view.get_by_text("Соларен парк", exact=True).first.is_visible()
        finally:
            browser.close()
