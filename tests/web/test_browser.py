"""End to end in a real browser: Debian's Chromium (headless, via Playwright) against
``newsletter serve``: subscribe, confirm from the outbox email, change the language in the
preference centre, unsubscribe. No JavaScript is needed by any page, so it is disabled."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from newsletter.models import SubscriberStatus
from newsletter.store import Store
from web.web_helpers import serve

CHROMIUM = os.environ.get("NEWSLETTER_CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $NEWSLETTER_CHROMIUM)",
)


def _confirm_url(outbox: Path) -> str:
    # the confirmation is sent after the form was answered: wait for it to be written
    deadline = time.monotonic() + 30
    while not list(outbox.rglob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.05)
    [path] = outbox.rglob("*.eml")
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    text = msg.get_body(("plain",))
    assert text is not None
    found = re.search(r"http://127\.0\.0\.1:\d+/confirm/\S+", text.get_content())
    assert found is not None
    return found.group(0)


def test_subscribe_confirm_change_language_unsubscribe(tmp_path: Path) -> None:
    # SQLite only: the server process and this test on PostgreSQL are covered by test_serve
    db_url = f"sqlite:///{tmp_path / 'web.db'}"
    from playwright.sync_api import sync_playwright

    with serve(tmp_path, db_url) as served, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = browser.new_context(java_script_enabled=False, locale="en-US")
            page = context.new_page()

            page.goto(f"{served.base_url}/subscribe")
            assert page.locator("html").get_attribute("lang") == "en"
            page.get_by_label("Email address", exact=True).fill("elena@example.org")
            page.get_by_label("Your name (optional)", exact=True).fill("Elena Georgieva")
            page.get_by_label("Newsletter language").select_option("en")
            page.get_by_role("checkbox", name="news").first.check()
            page.locator('input[name="consent"]').check()
            page.get_by_role("button", name="Subscribe").click()
            page.get_by_role("heading", name="Check your inbox").wait_for()

            page.goto(_confirm_url(served.outbox))
            page.get_by_role("button", name="Confirm subscription").click()
            page.get_by_role("heading", name="Subscription confirmed").wait_for()
            with Store.open(db_url) as store:
                sub = store.subscribers.find("elena@example.org")
                assert sub is not None and sub.status is SubscriberStatus.ACTIVE
                assert sub.lists == ("news",)

            page.get_by_role("link", name="Manage preferences").click()
            page.get_by_label("Newsletter language").select_option("de")
            page.get_by_role("button", name="Save preferences").click()
            page.get_by_text("Ihre Einstellungen wurden gespeichert.").wait_for()
            assert page.locator("html").get_attribute("lang") == "de"
            with Store.open(db_url) as store:
                sub = store.subscribers.find("elena@example.org")
                assert sub is not None and sub.locale == "de"

            page.get_by_role("link", name="Abmelden").click()
            page.get_by_role("button", name="Ja, abmelden").click()
            page.get_by_role("heading", name="Sie sind abgemeldet").wait_for()
            with Store.open(db_url) as store:
                sub = store.subscribers.find("elena@example.org")
                assert sub is not None and sub.status is SubscriberStatus.UNSUBSCRIBED
                events = store.events.for_subscriber(sub.id)
                assert [(e.kind, e.source) for e in events] == [
                    ("confirmed", "web:confirm"),
                    ("preferences", "web:preferences"),
                    ("unsubscribed", "web:page"),
                ]
        finally:
            browser.close()
