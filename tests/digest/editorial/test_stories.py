"""Desk stories: written, edited, hidden and listed through the library, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from digest.editorial.conftest import EDITOR, NOW, desk, gathered
from newsletter.config import Settings
from newsletter.digest import editorial as ed
from newsletter.digest.stories import select_stories
from newsletter.errors import EditorialError
from newsletter.gather.sources import SOURCES
from newsletter.store import Store


def selected(settings: Settings, store: Store) -> list[str]:
    return [s.original.title for s in select_stories(settings, store, settings.segments[0], NOW)]


def test_a_desk_story_is_an_item_the_digest_selects(settings: Settings, store: Store) -> None:
    item_id = desk(settings, store, 1, tags=("solar", " solar ", "board"))
    item = store.items.get(item_id)
    assert item.source == ed.DESK_SOURCE == "desk" and item.lang == "bg"
    assert item.body_html == "<p>Текст на <strong>новина 1</strong>.</p>"
    assert item.tags == ("solar", "board") and item.link is None
    assert ed.desk_story(store, item_id).body_markdown == "Текст на **новина 1**."
    assert selected(settings, store) == ["Новина 1 от бюрото"]
    # the kind is registered like the others and gathers nothing (no files involved)
    assert "desk" in SOURCES


def test_hostile_markdown_is_sanitized_like_gathered_markdown(
    settings: Settings, store: Store
) -> None:
    body = (
        '<script>alert(1)</script><img src=x onerror="alert(2)">\n\n'
        '[click](javascript:alert(3)) <a href="https://example.org/" onclick="x()">ok</a>'
    )
    change = ed.create_story(
        settings,
        store,
        ed.StoryDraft(title="Title\x1b[2J\u0007 here", body_markdown=body, lang="bg"),
        actor=EDITOR,
        now=NOW,
    )
    item = store.items.get(change.item_id or 0)
    for bad in ("<script", "onerror", 'href="javascript', "onclick", "\x1b"):
        assert bad not in item.body_html and bad not in item.title
    assert 'href="https://example.org/"' in item.body_html
    assert item.title == "Title here"
    assert ed.render_markdown(body) == item.body_html
    assert change.action == "story.create" and change.actor == EDITOR
    assert change.target == f"item:{change.item_id}" and "Title" in change.summary()


def test_editing_keeps_the_item_id(settings: Settings, store: Store) -> None:
    item_id = desk(settings, store, 1)
    change = ed.edit_story(
        settings,
        store,
        item_id,
        ed.StoryDraft(title="Поправено", body_markdown="Нов *текст*.", lang="bg"),
        actor="second@cluster.example.org",
        now=NOW + timedelta(hours=1),
    )
    assert change.item_id == item_id and change.action == "story.edit"
    item = store.items.get(item_id)
    assert item.title == "Поправено" and item.body_html == "<p>Нов <em>текст</em>.</p>"
    # no date given on edit: the story keeps its own
    assert item.published_at == NOW - timedelta(hours=1)
    story = ed.desk_story(store, item_id)
    assert story.created_by == EDITOR and story.updated_by == "second@cluster.example.org"
    assert store.items.count() == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "  \x00 "}, "needs a title"),
        ({"lang": "xx"}, "not a configured locale"),
        ({"image": "javascript:alert(1)"}, r"absolute http\(s\) URL"),
        ({"image": "/relative.png"}, r"absolute http\(s\) URL"),
        ({"title": "x" * 501}, "longer than 500"),
    ],
)
def test_bad_fields_are_refused_and_nothing_is_stored(
    settings: Settings, store: Store, fields: dict[str, str], message: str
) -> None:
    values = {"title": "Заглавие", "body_markdown": "Текст.", "lang": "bg", **fields}
    with pytest.raises(EditorialError, match=message):
        ed.create_story(settings, store, ed.StoryDraft(**values), actor=EDITOR, now=NOW)
    assert store.items.count() == 0


def test_only_desk_stories_can_be_edited(settings: Settings, store: Store) -> None:
    other = gathered(store, 1)
    draft = ed.StoryDraft(title="Hijack", body_markdown="x", lang="bg")
    with pytest.raises(EditorialError, match="not written in the desk"):
        ed.edit_story(settings, store, other, draft, actor=EDITOR, now=NOW)
    with pytest.raises(EditorialError, match="no item with id 999"):
        ed.edit_story(settings, store, 999, draft, actor=EDITOR, now=NOW)
    assert store.items.get(other).title == "Gathered 1 (bg)"


def test_hidden_items_of_any_source_leave_future_selections(
    settings: Settings, store: Store
) -> None:
    one = gathered(store, 1)
    desk(settings, store, 2)
    change = ed.hide_item(store, one, actor=EDITOR, now=NOW, reason="duplicate of \x1b[31m2")
    assert change.action == "item.hide" and change.detail == {"reason": "duplicate of 2"}
    assert selected(settings, store) == ["Новина 2 от бюрото"]
    # idempotent both ways
    ed.hide_item(store, one, actor=EDITOR, now=NOW)
    ed.show_item(store, one, actor=EDITOR, now=NOW)
    ed.show_item(store, one, actor=EDITOR, now=NOW)
    assert selected(settings, store) == ["Gathered 1 (bg)", "Новина 2 от бюрото"]


def test_hiding_one_variant_drops_only_that_variant(settings: Settings, store: Store) -> None:
    bg = gathered(store, 1, key="story-1")
    en = gathered(store, 1, lang="en", key="story-1")
    ed.hide_item(store, en, actor=EDITOR, now=NOW)
    (story,) = select_stories(settings, store, settings.segments[0], NOW)
    assert [v.id for v in story.variants] == [bg]
    ed.hide_item(store, bg, actor=EDITOR, now=NOW)
    assert select_stories(settings, store, settings.segments[0], NOW) == []


def test_list_items_filters_for_the_desk(settings: Settings, store: Store) -> None:
    a = gathered(store, 30)
    b = gathered(store, 5, lang="en")
    c = desk(settings, store, 2)
    ed.hide_item(store, a, actor=EDITOR, now=NOW)

    def ids(**kw: object) -> list[int]:
        return [row.item.id for row in ed.list_items(store, **kw)]  # type: ignore[arg-type]

    assert ids() == [c, b, a]
    assert ids(source="desk") == [c] and ids(lang="en") == [b]
    assert ids(since=NOW - timedelta(hours=10), until=NOW - timedelta(hours=3)) == [b]
    assert ids(hidden=True) == [a] and ids(hidden=False) == [c, b]
    assert ids(limit=1, offset=1) == [b]
    rows = {row.item.id: row for row in ed.list_items(store)}
    assert rows[c].desk and not rows[b].desk and rows[a].hidden
    edition = store.editions.create("members", "2026-W48", [(b, "item:b")], NOW)
    assert ids(edition_id=edition.id) == [b]
    assert ed.list_items(store, edition_id=edition.id)[0].editions == (edition.id,)
    assert ed.item_sources(store) == ["desk", "news"]
