"""Locale versions: side by side, by hand, machine drafts (a DeepL imitation on 127.0.0.1),
reviews, and what the email labels; coverage per locale."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from digest.editorial.conftest import EDITOR, NOW, desk, gathered
from digest.translate_fake import KEY, FakeDeepL
from newsletter.config import Settings
from newsletter.digest import editorial as ed
from newsletter.errors import EditorialError
from newsletter.store import Store

LABEL_EN = "Machine-translated from"
TRANSLATOR = "translator@cluster.example.org"


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
    db_url: str,
    tmp_path: Path,
    deepl: FakeDeepL,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    monkeypatch.setenv("DEEPL_API_KEY", KEY)
    return make_config(
        database={"url": db_url},
        locales={"default": "bg", "available": ["bg", "en", "de"]},
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        translation={"enabled": True, "base_url": deepl.url},
    )


def email_html(settings: Settings, store: Store, locale: str) -> str:
    variant = ed.preview_next(settings, store, "members", locale, now=NOW)
    assert variant is not None
    return variant.html


def test_a_version_written_by_hand_sits_beside_the_original(
    settings: Settings, store: Store
) -> None:
    item_id = desk(settings, store, 1)
    change = ed.save_version(
        settings,
        store,
        item_id,
        "en",
        title="Desk news 1",
        body="Text of **news 1**.",
        actor=TRANSLATOR,
        now=NOW,
    )
    assert change.action == "version.save" and change.detail["locale"] == "en"
    versions = ed.story_versions(settings, store, item_id)
    assert versions.original.id == item_id and versions.key == f"item:{item_id}"
    assert sorted(versions.versions) == ["bg", "en"] and versions.missing == ("de",)
    en = versions.versions["en"]
    assert en.state is ed.ReviewState.HUMAN and en.created_by == TRANSLATOR
    assert en.body_html == "<p>Text of <strong>news 1</strong>.</p>" and not en.outdated
    assert versions.versions["bg"].state is ed.ReviewState.ORIGINAL
    # the same story from either variant's id
    assert ed.story_versions(settings, store, change.item_id or 0).original.id == item_id
    # an English reader gets it, unlabelled; a Bulgarian one the original
    html = email_html(settings, store, "en")
    assert "Desk news 1" in html and LABEL_EN not in html
    assert "Новина 1 от бюрото" in email_html(settings, store, "bg")
    # rewriting keeps one version per locale
    ed.save_version(
        settings, store, item_id, "en", title="Desk news one", body="x", actor=EDITOR, now=NOW
    )
    assert ed.story_versions(settings, store, item_id).versions["en"].title == "Desk news one"
    assert store.items.count() == 2


def test_a_gathered_story_without_a_key_gets_versions_too(settings: Settings, store: Store) -> None:
    item_id = gathered(store, 1)
    ed.save_version(
        settings,
        store,
        item_id,
        "de",
        title="<b>Nachricht</b> 1",
        body='<p onclick="x()">Text</p><script>bad()</script>',
        body_format="html",
        actor=EDITOR,
        now=NOW,
    )
    de = ed.story_versions(settings, store, item_id).versions["de"]
    assert de.title == "<b>Nachricht</b> 1" and de.body_html == "<p>Text</p>"
    html = email_html(settings, store, "de")
    # a title is text: escaped, never markup
    assert "&lt;b&gt;Nachricht&lt;/b&gt; 1" in html and "<b>Nachricht" not in html


def test_versions_are_refused_where_they_make_no_sense(settings: Settings, store: Store) -> None:
    item_id = gathered(store, 1, key="k1")
    en_id = gathered(store, 1, lang="en", key="k1")
    with pytest.raises(EditorialError, match="language of the original"):
        ed.save_version(settings, store, item_id, "bg", title="t", body="b", actor=EDITOR, now=NOW)
    with pytest.raises(EditorialError, match=f"item {en_id}, gathered"):
        ed.save_version(settings, store, item_id, "en", title="t", body="b", actor=EDITOR, now=NOW)
    with pytest.raises(EditorialError, match="not a configured locale"):
        ed.save_version(settings, store, item_id, "fr", title="t", body="b", actor=EDITOR, now=NOW)
    with pytest.raises(EditorialError, match="not configured"):
        ed.machine_draft(settings, store, item_id, "de", actor=EDITOR, now=NOW)
    assert not ed.machine_translation_available(settings)
    assert store.items.count() == 2


def test_a_machine_draft_is_labelled_until_a_person_reviews_it(
    translating: Settings, deepl: FakeDeepL
) -> None:
    settings = translating
    with Store.open(settings.database_url()) as store:
        item_id = desk(settings, store, 1)
        assert ed.machine_translation_available(settings)
        change = ed.machine_draft(settings, store, item_id, "en", actor=EDITOR, now=NOW)
        assert change.action == "version.machine" and change.detail["provider"] == "deepl"
        assert len(deepl.requests) == 1 and deepl.requests[0]["target_lang"] == "EN-GB"
        en = ed.story_versions(settings, store, item_id).versions["en"]
        assert en.state is ed.ReviewState.MACHINE and en.title == "[EN-GB] Новина 1 от бюрото"
        assert LABEL_EN in email_html(settings, store, "en")

        later = NOW + timedelta(minutes=5)
        review = ed.mark_reviewed(settings, store, item_id, "en", actor=TRANSLATOR, now=later)
        assert review.action == "version.review" and review.detail["was"] == "machine-translated"
        en = ed.story_versions(settings, store, item_id).versions["en"]
        assert en.state is ed.ReviewState.REVIEWED
        assert (en.reviewed_by, en.reviewed_at) == (TRANSLATOR, later)
        html = email_html(settings, store, "en")
        assert "[EN-GB] Новина 1 от бюрото" in html and LABEL_EN not in html
        # a reviewed (or hand-written) version is never replaced by a draft
        with pytest.raises(EditorialError, match="is reviewed"):
            ed.machine_draft(settings, store, item_id, "en", actor=EDITOR, now=NOW)
        # editing the original marks the version outdated
        ed.edit_story(
            settings,
            store,
            item_id,
            ed.StoryDraft(title="Ново заглавие", body_markdown="Друго.", lang="bg"),
            actor=EDITOR,
            now=later,
        )
        assert ed.story_versions(settings, store, item_id).versions["en"].outdated


def test_an_automatic_translation_shows_and_can_be_reviewed(
    translating: Settings, deepl: FakeDeepL
) -> None:
    settings = translating
    with Store.open(settings.database_url()) as store:
        item_id = desk(settings, store, 1)
        # the digest translates on its own for a German reader and caches it
        assert LABEL_EN not in email_html(settings, store, "bg")
        assert "Maschinelle" in email_html(settings, store, "de")
        de = ed.story_versions(settings, store, item_id).versions["de"]
        assert de.state is ed.ReviewState.MACHINE and de.item_id is None
        cov = ed.coverage(settings, store, "members", now=NOW)
        assert (cov.locales["de"].have, cov.locales["de"].machine) == (1, 1)
        ed.mark_reviewed(settings, store, item_id, "de", actor=TRANSLATOR, now=NOW)
        de = ed.story_versions(settings, store, item_id).versions["de"]
        assert de.state is ed.ReviewState.REVIEWED and de.item_id is not None
        assert "Maschinell" not in email_html(settings, store, "de")
        assert len(deepl.requests) == 1


def test_coverage_counts_what_each_locale_has(settings: Settings, store: Store) -> None:
    one = desk(settings, store, 1)
    two = desk(settings, store, 2)
    gathered(store, 3, key="k3")
    gathered(store, 3, lang="en", key="k3")
    ed.save_version(settings, store, one, "en", title="One", body="x", actor=EDITOR, now=NOW)
    cov = ed.coverage(settings, store, "members", now=NOW)
    assert cov.total == 3
    bg, en, de = cov.locales["bg"], cov.locales["en"], cov.locales["de"]
    assert (bg.have, bg.reviewed, bg.missing) == (3, 3, ())
    assert (en.have, en.machine, en.missing) == (2, 0, (f"item:{two}",))
    assert de.have == 0 and len(de.missing) == 3


def test_what_the_translator_returns_is_sanitized(translating: Settings, deepl: FakeDeepL) -> None:
    settings = translating
    deepl.reply = '<img src=x onerror="steal()"><script>bad()</script><p>Hi</p>'
    with Store.open(settings.database_url()) as store:
        item_id = desk(settings, store, 1)
        ed.machine_draft(settings, store, item_id, "en", actor=EDITOR, now=NOW)
        en = ed.story_versions(settings, store, item_id).versions["en"]
        assert "onerror" not in en.body_html and "<script" not in en.body_html
        assert "<p>Hi</p>" in en.body_html
        html = email_html(settings, store, "en")
        # the title came back as markup too: it is text, escaped like any title
        assert "<script>bad()" not in html and '<img src=x onerror="steal()">' not in html
        assert "&lt;script&gt;bad()" in html
