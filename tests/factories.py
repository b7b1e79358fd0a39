"""The one factory of stored items for every test folder: fixed dates, made-up text, and
only what a test cares about overridden (``make_item(3, lang="en", link=None)``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from newsletter.models import Item

#: the date of the seed item's kind of news (no test depends on today's date)
WHEN = datetime(2012, 10, 15, 9, 30, tzinfo=UTC)


def make_item(n: int, *, when: datetime = WHEN, prefix: str = "news", **fields: Any) -> Item:
    """Item ``n``: a Bulgarian story of source "news" with a link, dated ``when``; every
    field can be overridden. ``prefix`` names its guid and content hash."""
    values: dict[str, Any] = {
        "id": n,
        "source": "news",
        "guid": f"{prefix}-{n}",
        "title": f"Новина {n} на клъстера",
        "body_html": "<p>Текст на новината.</p>",
        "summary_html": "<p>Текст на новината.</p>",
        "link": f"https://cluster.example.org/news/{n}",
        "published_at": when,
        "lang": "bg",
        "translation_key": None,
        "tags": (),
        "image": None,
        "content_hash": f"{prefix}-{n}",
        "first_seen_at": when,
        "updated_at": when,
    }
    values.update(fields)
    return Item(**values)
