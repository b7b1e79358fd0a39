"""The report charts as a reader of the page sees them, in Debian's Chromium (JavaScript
off): each chart is an image named by its title, and its labels are visible text."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from engagement_seed import NOW, provider_events, seed_edition

from newsletter.config import Settings
from newsletter.store import Store
from newsletter.web.engagement_page import charts, page

CHROMIUM = os.environ.get("NEWSLETTER_CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $NEWSLETTER_CHROMIUM)",
)


def test_charts_render_with_names_and_labels(
    make_config: Callable[..., Settings], store: Store, tmp_path: Path
) -> None:
    settings = make_config(tracking={"clicks": True})
    for week, bounced in (("2026-W46", 1), ("2026-W47", 2)):
        edition_id, ids = seed_edition(store, week, {"bg": 4})
        provider_events(store, edition_id, "delivered", ids[bounced:])
        provider_events(store, edition_id, "hard_bounce", ids[:bounced])
    stories = (("Соларен парк <Добрич>", "https://cluster.example.org/n/1"),)
    stories += (("ვეტროპარკი", "https://cluster.example.org/n/2"),)
    edition_id, ids = seed_edition(store, "2026-W48", {"bg": 2, "ka": 2}, stories=stories)
    provider_events(store, edition_id, "delivered", ids)
    for d in ids[:3]:
        store.engagement.record(
            "clicked",
            edition_id=edition_id,
            locale="bg" if d in ids[:2] else "ka",
            delivery_id=d,
            story="https://cluster.example.org/n/1",
            at=NOW,
        )
    html = page("Reports", charts(settings, store, "members"))
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = browser.new_context(java_script_enabled=False)
            view = context.new_page()
            view.goto(path.as_uri())
            trend = view.get_by_role("img", name="Delivery and bounce rates over the last editions")
            clicks = view.get_by_role("img", name="Readers who clicked, per story and language")
            coverage = view.get_by_role("img", name="Translation coverage and clicks per language")
            for chart in (trend, clicks, coverage):
                box = chart.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 50
            # three editions: 75%, 50% and 100% delivered
            for label in ("75.0%", "50.0%", "100.0%", "#3 2026-W48"):
                assert trend.get_by_text(label, exact=True).first.is_visible(), label
            assert clicks.get_by_text("Соларен парк <Добрич>", exact=True).is_visible()
            assert clicks.get_by_text("bg 2", exact=True).is_visible()
            assert clicks.get_by_text("ka 1", exact=True).is_visible()
            assert coverage.get_by_text("ka", exact=True).first.is_visible()
            assert view.locator("script").count() == 0
        finally:
            browser.close()
