"""The desk end to end in Debian's Chromium (headless, via Playwright, JavaScript off)
against a real ``newsletter serve``: an admin made with ``newsletter desk add-user`` logs
in, writes a story in Bulgarian, adds and reviews an English version, sees both in the
previews of the next edition, prepares and approves it, watches the delivery reach the
outbox, and logs out. With ``NEWSLETTER_DESK_SCREENSHOTS=DIR`` the main pages are saved
there as PNG files on the way (that is how docs/desk/ is made)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support import child_env

from newsletter.models import EditionStatus, NewSubscriber
from newsletter.store import Store
from web.web_helpers import NOW, SECRET, serve

CHROMIUM = os.environ.get("NEWSLETTER_CHROMIUM", "/usr/bin/chromium")
SHOTS = os.environ.get("NEWSLETTER_DESK_SCREENSHOTS")

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $NEWSLETTER_CHROMIUM)",
)

#: appended to the test config: the segment waits for approval; the desk is on
EXTRA = """approval = "required"

[desk]
enabled = true
progress_refresh_seconds = 1
"""
PASSWORD = "a very long desk password"


def _first_edition(db_url: str) -> Any:
    """The edition the desk's "prepare" makes in the server's background."""
    deadline = time.monotonic() + 60
    with Store.open(db_url) as store:
        while not (found := store.editions.list()):
            assert time.monotonic() < deadline, "no edition was prepared within 60 s"
            time.sleep(0.1)
    return found[0]


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_write_translate_preview_approve_deliver(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'desk.db'}"
    with Store.open(db_url) as store:
        for email, locale in (("maria@example.org", "bg"), ("john@example.com", "en")):
            store.subscribers.add(
                NewSubscriber(email=email, name="Reader", locale=locale, lists=("news",)), NOW
            )
    from playwright.sync_api import expect, sync_playwright

    with serve(tmp_path, db_url, EXTRA) as served, sync_playwright() as pw:
        added = subprocess.run(
            [
                sys.executable,
                "-m",
                "newsletter",
                "--config",
                str(served.config),
                "desk",
                "add-user",
                "elena@example.org",
                "--role",
                "admin",
                "--password-stdin",
            ],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env=child_env(NEWSLETTER_SECRET_KEY=SECRET),
        )
        assert added.returncode == 0, added.stderr
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = browser.new_context(
                java_script_enabled=False, locale="en-US", viewport={"width": 1280, "height": 900}
            )
            page = context.new_page()
            # 1. log in
            page.goto(f"{served.base_url}/desk/")
            assert page.locator("html").get_attribute("lang") == "en"
            _shot(page, "login")
            page.get_by_label("Email address").fill("elena@example.org")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("heading", name="Dashboard").wait_for()

            # 2. write a story in Bulgarian, then its English version, reviewed
            page.get_by_role("navigation", name="Desk sections").get_by_role(
                "link", name="Stories"
            ).click()
            page.get_by_role("link", name="Write a new story").click()
            page.get_by_label("Title").fill("Нов соларен парк край Добрич")
            page.get_by_label("Story language").select_option("bg")
            page.get_by_label("Text (Markdown)").fill(
                "Паркът ще произвежда **12 MW**. Открит е от членовете на клъстера."
            )
            page.get_by_role("button", name="Preview").click()
            expect(page.locator("section.card strong")).to_have_text("12 MW")
            _shot(page, "story")
            page.get_by_role("button", name="Save the story").click()
            page.get_by_text("The story is saved.").wait_for()
            page.get_by_label("Title (en)").fill("New solar park near Dobrich")
            page.get_by_label("Text (en)").fill("The park will produce **12 MW**.")
            page.get_by_role("button", name="Save the English version").click()
            page.get_by_text("The version is saved.").wait_for()
            page.get_by_role("button", name="Mark the English version reviewed").click()
            page.get_by_text("The version is marked reviewed.").wait_for()
            expect(page.locator("#v-en .badge")).to_have_text("reviewed")
            _shot(page, "translations")

            # 3. both versions in the previews of the next edition
            page.get_by_role("link", name="Next edition").click()
            page.get_by_role("heading", name=re.compile("Next edition of news")).wait_for()
            expect(page.get_by_role("link", name="Нов соларен парк край Добрич")).to_be_visible()
            _shot(page, "next-edition")
            page.get_by_role("link", name="Preview English (en)").click()
            page.get_by_text("New solar park near Dobrich", exact=True).first.wait_for()
            assert "machine-translated" not in page.content()
            page.go_back()
            page.get_by_role("link", name="Preview български (bg)").click()
            page.get_by_text("Нов соларен парк край Добрич", exact=True).first.wait_for()
            page.go_back()

            # 4. prepare, approve, watch the delivery reach done, log out
            page.get_by_role("button", name="Prepare the edition now").click()
            page.get_by_text("The edition is being prepared").wait_for()
            edition = _first_edition(db_url)
            page.goto(f"{served.base_url}/desk/editions/{edition.id}")
            expect(page.locator("#edition-status")).to_have_text(
                "awaiting approval", timeout=30_000
            )
            page.get_by_role("button", name="Approve and send").click()
            page.get_by_text("The edition is approved.").wait_for()
            # the page reloads itself (meta refresh) until the edition is sent
            expect(page.locator("#edition-status")).to_have_text("finished", timeout=60_000)
            expect(page.locator("#progress-text")).to_have_text("2 / 2")
            _shot(page, "edition")
            with Store.open(db_url) as store:
                assert store.editions.get(edition.id).status is EditionStatus.FINISHED
                actions = [e.action for e in store.desk.audit_log()]
            assert len(list(served.outbox.rglob("*.eml"))) == 2
            for action in ("story.create", "version.save", "version.review", "edition.approve"):
                assert action in actions
            page.get_by_role("link", name="Dashboard").click()
            _shot(page, "dashboard")
            page.get_by_role("link", name="Subscribers").click()
            _shot(page, "subscribers")
            # the staff's own language, from the catalogs
            page.goto(f"{served.base_url}/desk/?lang=bg")
            page.get_by_role("heading", name="Табло").wait_for()
            _shot(page, "dashboard-bg")
            page.get_by_role("link", name="English", exact=True).click()
            page.get_by_role("button", name="Log out").click()
            page.get_by_role("heading", name="Log in to the desk").wait_for()
            page.goto(f"{served.base_url}/desk/")
            page.get_by_role("heading", name="Log in to the desk").wait_for()
        finally:
            browser.close()
