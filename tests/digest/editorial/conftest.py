"""Fixtures of the editorial tests: a config with two segments, a store, a fixed clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Settings
from newsletter.digest.editorial import StoryDraft, create_story
from newsletter.store import Store
from newsletter.store.items import ItemRecord

#: a Friday morning; stories are dated the days before
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
EDITOR = "editor@cluster.example.org"


@pytest.fixture
def settings(make_config: Callable[..., Settings], db_url: str, tmp_path: Path) -> Settings:
    return make_config(
        database={"url": db_url},
        locales={"default": "bg", "available": ["bg", "en", "de"]},
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings.database_url()) as st:
        yield st


def desk(settings: Settings, store: Store, n: int, **fields: Any) -> int:
    """Write desk story ``n`` (Bulgarian, dated ``n`` hours before NOW); its item id."""
    values: dict[str, Any] = {
        "title": f"Новина {n} от бюрото",
        "body_markdown": f"Текст на **новина {n}**.",
        "lang": "bg",
        "published": NOW - timedelta(hours=n),
    }
    values.update(fields)
    change = create_story(settings, store, StoryDraft(**values), actor=EDITOR, now=NOW)
    assert change.item_id is not None
    return change.item_id


def gathered(store: Store, n: int, *, lang: str = "bg", key: str | None = None) -> int:
    """Store item ``n`` of a gathered source "news"; its id."""
    title = f"Gathered {n} ({lang})"
    store.items.upsert(
        ItemRecord(
            source="news",
            guid=f"news-{n}-{lang}",
            title=title,
            body_html=f"<p>Body {n}.</p>",
            summary_html=f"<p>Body {n}.</p>",
            link=f"https://cluster.example.org/news/{n}/{lang}",
            published_at=NOW - timedelta(hours=n),
            lang=lang,
            translation_key=key,
            tags=(),
            image=None,
            content_hash=f"hash-{n}-{lang}",
        ),
        NOW,
    )
    found = [i for i in store.items.list() if i.guid == f"news-{n}-{lang}"]
    return found[0].id
