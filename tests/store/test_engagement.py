"""Engagement rows: one insert per click, folding old events into counts keeps the report,
the trend of a segment, and a delivery of another edition is never linked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from engagement_seed import NOW, provider_events, seed_edition

from newsletter.config import Settings
from newsletter.reports import edition_report, segment_trend
from newsletter.store import Store
from newsletter.store.tables import engagement_counts, webhook_events
from newsletter.web.housekeeping import housekeep

STORY = "https://cluster.example.org/n/1"


def rows(store: Store, table: sa.Table = webhook_events) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_click_is_one_row_and_a_foreign_delivery_is_not_linked(store: Store) -> None:
    edition, ids = seed_edition(store, "2026-W48", {"bg": 2}, stories=(("Парк", STORY),))
    other, other_ids = seed_edition(store, "2026-W49", {"bg": 1})
    for delivery in (ids[0], ids[0], ids[1]):
        store.engagement.record(
            "clicked", edition_id=edition, locale="bg", delivery_id=delivery, story=STORY, at=NOW
        )
    assert rows(store) == 3
    # a delivery of another edition (a token could only claim it if forged): not counted
    store.engagement.record(
        "clicked", edition_id=edition, locale="bg", delivery_id=other_ids[0], story=STORY, at=NOW
    )
    counts = store.engagement.counts(edition)
    assert counts.clicks[(STORY, "bg")].total == 3
    assert counts.clicks[(STORY, "bg")].readers == 2
    assert other not in {edition}


def test_folding_old_events_keeps_the_report_and_deletes_the_rows(
    make_config: Callable[..., Settings], store: Store
) -> None:
    settings = make_config(tracking={"clicks": True, "retention_days": 30})
    edition, ids = seed_edition(store, "2026-W40", {"bg": 3}, stories=(("Парк", STORY),))
    provider_events(store, edition, "delivered", ids, days_ago=60)
    provider_events(store, edition, "hard_bounce", ids[:1], days_ago=60)
    for d in ids[:2]:
        store.engagement.record(
            "clicked",
            edition_id=edition,
            locale="bg",
            delivery_id=d,
            story=STORY,
            at=NOW - timedelta(days=45),
        )
    store.engagement.record(
        "clicked", edition_id=edition, locale="bg", delivery_id=ids[2], story=STORY, at=NOW
    )
    before = edition_report(settings, store, edition).to_json()
    done = housekeep(settings, store, NOW)
    assert done.engagement_folded == 6
    after = edition_report(settings, store, edition).to_json()
    assert after == before
    [line] = after["locales"]
    assert (line["delivered"], line["hard_bounces"], line["clicks_total"]) == (3, 1, 3)
    assert rows(store, engagement_counts) == 3
    with store.engine.connect() as conn:
        linked = conn.execute(
            sa.select(sa.func.count()).where(webhook_events.c.edition_id.is_not(None))
        ).scalar_one()
    assert linked == 1  # only today's click still names its delivery
    # folding again changes nothing
    assert housekeep(settings, store, NOW).engagement_folded == 0
    assert edition_report(settings, store, edition).to_json() == before


def test_trend_of_a_segment_oldest_first(store: Store) -> None:
    for week, bounced in (("2026-W46", 0), ("2026-W47", 1), ("2026-W48", 2)):
        edition, ids = seed_edition(store, week, {"bg": 4})
        provider_events(store, edition, "delivered", ids[bounced:])
        provider_events(store, edition, "soft_bounce", ids[:bounced])
    seed_edition(store, "2026-W48", {"en": 1}, segment="partners")
    lines = segment_trend(store, "members", 2)
    assert [x.period for x in lines] == ["2026-W47", "2026-W48"]
    assert [(x.delivery_rate, x.bounce_rate) for x in lines] == [(0.75, 0.25), (0.5, 0.5)]
    assert lines[-1].to_json()["bounce_rate"] == 0.5
