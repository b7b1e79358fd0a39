"""Machine translation: DeepL over httpx against a local imitation, cached in the store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from digest.translate_fake import KEY, FakeDeepL
from newsletter.config import Settings
from newsletter.digest.select import Story, entries_for, group_stories
from newsletter.digest.translate import (
    DeepLTranslator,
    TranslationError,
    build_translator,
    translate_missing,
)
from newsletter.errors import ConfigError
from newsletter.models import Item
from newsletter.render.renderer import Renderer
from newsletter.store import Store
from newsletter.store.items import ItemRecord

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
# invented sample text
TITLE = "Клъстерът откри демонстрационна соларна инсталация & зарядна станция"
BODY = "<p>Общината и <b>членовете на клъстера</b> показаха новата инсталация.</p>"
SUMMARY = "<p>Нова инсталация в индустриалната зона.</p>"


@pytest.fixture
def deepl() -> Iterator[FakeDeepL]:
    """A running fake DeepL endpoint."""
    fake = FakeDeepL()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def translator(deepl: FakeDeepL) -> Iterator[DeepLTranslator]:
    """A DeepL translator pointed at the fake endpoint."""
    t = DeepLTranslator(KEY, base_url=deepl.url, timeout=5)
    yield t
    t.close()


def add_item(store: Store, guid: str, *, lang: str = "bg", key: str | None = None) -> Item:
    """Store an invented item and return it as read back."""
    store.items.upsert(
        ItemRecord(
            source="news",
            guid=guid,
            title=TITLE,
            body_html=BODY,
            summary_html=SUMMARY,
            link=f"https://cluster.example.org/news/{guid}",
            published_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
            lang=lang,
            translation_key=key,
            tags=("energy",),
            image=None,
            content_hash=f"hash-{guid}-{lang}",
        ),
        NOW,
    )
    return next(i for i in store.items.list() if i.guid == guid)


def test_translates_once_then_serves_from_cache(
    store: Store, deepl: FakeDeepL, translator: DeepLTranslator
) -> None:
    """The first digest asks DeepL once per item and language; the next uses the store."""
    stories = group_stories([add_item(store, "a1")], "bg")

    first = translate_missing(stories, ["bg", "de", "en"], translator, store.translations, NOW)
    assert [r["target_lang"] for r in deepl.requests] == ["DE", "EN-GB"]
    # title, body and summary in one request
    assert len(deepl.requests[0]["text"]) == 3
    german = first[0].in_lang("de")
    assert german is not None
    assert german.id == stories[0].original.id
    assert german.title == f"[DE] {TITLE}"
    assert german.body_html == f"[DE] {BODY}"
    assert german.translated_from == "bg" and "energy" in german.tags
    assert first[0].in_lang("bg") == stories[0].original

    again = translate_missing(stories, ["bg", "de", "en"], translator, store.translations, NOW)
    assert len(deepl.requests) == 2
    assert again == first
    assert store.translations.count() == 2


def test_changed_original_is_translated_again(
    store: Store, deepl: FakeDeepL, translator: DeepLTranslator
) -> None:
    """The cache is keyed by content hash: an edited original gets a fresh translation."""
    story = group_stories([add_item(store, "a2")], "bg")[0]
    translate_missing([story], ["de"], translator, store.translations, NOW)
    changed = replace(story.original, content_hash="edited")
    edited = Story(story.key, changed, (changed,))
    translate_missing([edited], ["de"], translator, store.translations, NOW)
    assert len(deepl.requests) == 2


def test_existing_human_variant_is_not_translated(
    store: Store, deepl: FakeDeepL, translator: DeepLTranslator
) -> None:
    """A story that already has an English variant is only translated into German."""
    items = [add_item(store, "b1", key="k-b"), add_item(store, "b1-en", lang="en", key="k-b")]
    stories = group_stories(items, "bg")
    out = translate_missing(stories, ["en", "de"], translator, store.translations, NOW)
    assert [r["target_lang"] for r in deepl.requests] == ["DE"]
    assert out[0].in_lang("en") == items[1]


@pytest.mark.parametrize("status", [429, 456, 403, 500])
def test_failing_translator_falls_back_without_raising(
    store: Store,
    deepl: FakeDeepL,
    translator: DeepLTranslator,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rate limit, quota, bad key, server error: stories come back unchanged, one warning."""
    stories = group_stories([add_item(store, "c1"), add_item(store, "c2")], "bg")
    deepl.status = status
    with caplog.at_level(logging.WARNING, logger="newsletter.digest.translate"):
        out = translate_missing(stories, ["de", "en"], translator, store.translations, NOW)
    assert out == stories
    # the translator is left alone after its first failure
    assert len(deepl.requests) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"HTTP {status}" in warnings[0].getMessage()
    assert store.translations.count() == 0


def test_cached_translations_still_served_when_translator_fails(
    store: Store, deepl: FakeDeepL, translator: DeepLTranslator
) -> None:
    """Quota used up: what was translated before is still shown, the rest falls back."""
    done, new = add_item(store, "h1"), add_item(store, "h2")
    translate_missing(group_stories([done], "bg"), ["de"], translator, store.translations, NOW)
    deepl.status = 456
    out = translate_missing(
        group_stories([done, new], "bg"), ["de"], translator, store.translations, NOW
    )
    by_id = {s.original.id: s for s in out}
    assert by_id[done.id].in_lang("de") is not None
    assert by_id[new.id].in_lang("de") is None
    assert len(deepl.requests) == 2


def test_error_is_a_translation_error_with_retryable(
    deepl: FakeDeepL, translator: DeepLTranslator
) -> None:
    """httpx never leaks: statuses become TranslationError saying whether to retry."""
    deepl.status = 429
    with pytest.raises(TranslationError, match="429 too many requests") as rate:
        translator.translate(["<p>Здравейте</p>"], source="bg", target="de")
    assert rate.value.retryable
    deepl.status = 456
    with pytest.raises(TranslationError, match="456 quota exceeded") as quota:
        translator.translate(["<p>Здравейте</p>"], source="bg", target="de")
    assert not quota.value.retryable


def test_unreachable_host_is_a_translation_error() -> None:
    """A closed port is a retryable TranslationError, not an httpx exception."""
    fake = FakeDeepL()  # bound but never served; closing it frees a port nobody listens on
    url = fake.url
    fake.server.server_close()
    with DeepLTranslator(KEY, base_url=url, timeout=5) as t, pytest.raises(TranslationError) as err:
        t.translate(["<p>текст</p>"], source="bg", target="de")
    assert err.value.retryable and url in str(err.value)


def test_unsupported_target_is_skipped(
    store: Store, deepl: FakeDeepL, translator: DeepLTranslator
) -> None:
    """DeepL has no Georgian: ka readers keep the fallback chain, nothing is sent."""
    assert not translator.supports("ka")
    assert all(translator.supports(x) for x in ["bg", "en", "ro", "tr", "el", "ru", "uk", "de"])
    stories = group_stories([add_item(store, "d1")], "bg")
    out = translate_missing(stories, ["ka"], translator, store.translations, NOW)
    assert out == stories
    assert deepl.requests == []
    with pytest.raises(TranslationError, match="'ka'"):
        translator.translate(["<p>текст</p>"], source="bg", target="ka")


def test_no_translator_returns_stories_unchanged(store: Store) -> None:
    """Translation off: nothing changes."""
    stories = group_stories([add_item(store, "e1")], "bg")
    assert translate_missing(stories, ["de"], None, store.translations, NOW) == stories


def test_rendered_german_variant_is_labelled(
    store: Store,
    translator: DeepLTranslator,
    make_config: Callable[..., Settings],
) -> None:
    """A German reader sees the translated title with "machine-translated from Bulgarian"."""
    settings = make_config(locales={"default": "bg", "available": ["bg", "en", "de"]})
    stories = group_stories([add_item(store, "f1")], "bg")
    stories = translate_missing(stories, ["de"], translator, store.translations, NOW)
    entries = entries_for(stories, settings.locales.chain("de"))
    variant = Renderer(settings).render(
        segment=settings.segments[0],
        period_label="23.–29. November 2026",
        edition_date=date(2026, 11, 27),
        entries=entries,
        locale="de",
        view_url="https://cluster.example.org/archive/1/de",
    )
    assert "[DE] Клъстерът откри" in variant.html
    assert "Maschinelle Übersetzung (Original: Bulgarisch)" in variant.html
    assert "[Maschinelle Übersetzung (Original: Bulgarisch)]" in variant.text
    assert "Original auf" not in variant.html


def test_title_is_plain_text_after_translation(store: Store, translator: DeepLTranslator) -> None:
    """The title is escaped for HTML tag handling and unescaped after: "&" stays "&"."""
    stories = group_stories([add_item(store, "g1")], "bg")
    out = translate_missing(stories, ["de"], translator, store.translations, NOW)
    german = out[0].in_lang("de")
    assert german is not None and "& зарядна" in german.title and "&amp;" not in german.title


def test_missing_api_key_names_the_variable(make_config: Callable[..., Settings]) -> None:
    """Translation on without the key set: one ConfigError naming the variable."""
    settings = make_config(translation={"enabled": True, "api_key_env": "NL_TEST_DEEPL_KEY"})
    with pytest.raises(ConfigError, match="NL_TEST_DEEPL_KEY"):
        build_translator(settings, environ={})


def test_build_translator_picks_plan_host(make_config: Callable[..., Settings]) -> None:
    """Off by default; on, the plan picks the host unless base_url overrides it."""
    assert build_translator(make_config()) is None
    env = {"DEEPL_API_KEY": KEY}
    free = build_translator(make_config(translation={"enabled": True}), environ=env)
    pro = build_translator(make_config(translation={"enabled": True, "plan": "pro"}), environ=env)
    assert isinstance(free, DeepLTranslator) and isinstance(pro, DeepLTranslator)
    assert free.base_url == "https://api-free.deepl.com"
    assert pro.base_url == "https://api.deepl.com"
    free.close()
    pro.close()
