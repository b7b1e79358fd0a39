"""First-party click tracking on the demo project with ``[tracking] clicks = true``: a
story's tracked link from an outbox email redirects to that story and counts once per
reader; a tampered token gets 400 and no redirect; ``editions report --json`` shows it."""

from __future__ import annotations

import email
import email.policy
import json
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from support import cli, project

from newsletter import config
from newsletter.render.storypage import story_url
from newsletter.store import Store
from newsletter.web import create_app
from web.web_helpers import TestClient

BASE = "https://news.cluster.example.org"


def tracked_project(tmp_path: Path, extra: str = "") -> Path:
    cfg = project(tmp_path)
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + f"\n[tracking]\nclicks = true\n{extra}", encoding="utf-8"
    )
    return cfg


def html_of(path: Path) -> tuple[str, str]:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(("html",))
    assert part is not None
    html = part.get_content()
    lang = re.search(r'<html[^>]*\blang="([^"]+)"', html)
    assert lang is not None
    return html, lang.group(1)


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tracked_project(tmp_path)
    sent = cli(cfg, "digest", "--segment", "members")
    assert sent.returncode == 0, sent.stderr
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-key")  # as support.cli's children
    return cfg


def test_a_story_link_redirects_to_the_story_counts_once_and_shows_in_the_report(
    demo: Path,
) -> None:
    settings = config.load(demo)
    eml = sorted((demo.parent / "outbox").rglob("*.eml"))[0]
    html, locale = html_of(eml)
    # the story's title link goes through /r/, never straight to the story
    titles = re.findall(r'<a class="title-link" href="([^"]+)"[^>]*>([^<]+)</a>', html)
    assert titles and all(href.startswith(f"{BASE}/r/") for href, _ in titles)
    assert 'href="https://news.cluster.example.org/story/' not in html
    href, title = titles[0]
    with Store.open(settings.database_url()) as store:
        [edition] = store.editions.list()
        stories = store.engagement.stories(edition.id)
        app = create_app(settings, store)
        with TestClient(app, base_url=BASE) as client:
            path = href.removeprefix(BASE)
            first = client.get(path, follow_redirects=False)
            assert first.status_code == 302
            target = first.headers["location"]
            # the story's own URL: its link, or its page on our site
            [item] = [s for s in stories if s["title"] == title.strip()] or [
                s for s in stories if target in (s["link"], story_url(settings, s["id"], locale))
            ]
            assert target in (item["link"], story_url(settings, item["id"], locale))
            # the query cannot send the reader elsewhere
            again = client.get(path + "?next=https://evil.example.com/", follow_redirects=False)
            assert again.headers["location"] == target
            # a tampered token: 400, no redirect
            token = path.removeprefix("/r/")
            flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
            for bad in (flipped, token[:-1], token.replace(".", "x"), "x" * 20):
                refused = client.get(f"/r/{bad}", follow_redirects=False)
                assert refused.status_code == 400, bad
                assert "location" not in refused.headers
    report = cli(demo, "editions", "report", str(edition.id), "--json")
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    line = next(x for x in data["locales"] if x["locale"] == locale)
    assert (line["clicks_unique"], line["clicks_total"]) == (1, 2)  # once per reader
    [clicked] = [s for s in data["stories"] if s["clicks"]]
    assert clicked["key"] == item["group_key"]
    assert clicked["clicks"] == {locale: {"unique": 1, "total": 2}}
    text = cli(demo, "editions", "report", str(edition.id))
    assert text.returncode == 0 and "clickers" in text.stdout
    trend = cli(demo, "report", "--segment", "members", "--json")
    assert trend.returncode == 0, trend.stderr
    [last] = json.loads(trend.stdout)
    assert (last["edition_id"], last["clicks_unique"]) == (edition.id, 1)
    assert last["sent"] == sum(x["sent"] for x in data["locales"]) > 0
    unknown = cli(demo, "report", "--segment", "nobody")
    assert unknown.returncode == 2 and "nobody" in unknown.stderr


def test_the_archive_and_previews_carry_no_tracked_links(demo: Path) -> None:
    settings = config.load(demo)
    with Store.open(settings.database_url()) as store:
        [edition] = store.editions.list()
        app = create_app(settings, store)
        with TestClient(app, base_url=BASE) as client:
            for locale in store.editions.variants(edition.id):
                page = client.get(f"/archive/{edition.id}/{locale}")
                assert page.status_code == 200
                assert "/r/" not in page.text and "/o/" not in page.text
    index = (demo.parent / "outbox" / "index.html").read_text(encoding="utf-8")
    assert "/r/" not in index
