"""Benchmark: engagement reports over 100 editions and 1,000,000 events (SQLite, PostgreSQL).

Run from the project folder (PostgreSQL optional):

    python benchmarks/report_bench.py [--editions 100] [--events 1000000] [--runs 3] \\
        [--postgres postgresql://postgres@127.0.0.1:5432/nl_bench]

Seeds (not timed) one segment with ``--editions`` finished editions sent to 1,000 readers
in nine locales, 10 stories each, and ``--events`` engagement rows spread evenly over the
editions: delivered, deferred, bounces, complaints, unsubscribes, human and machine opens,
clicks on the stories, a share of them already folded into ``engagement_counts``. Then
times, median of ``--runs``: ``edition_report`` of the latest edition (what ``editions report
ID`` prints), ``segment_trend`` over every edition (``report --segment S --last 100``, which
reads every event), and one first-party click (``EngagementStore.record``, the write a
``/r/`` visit costs). The PostgreSQL database given is emptied (its tables dropped) first.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from newsletter.config import Settings, from_dict
from newsletter.reports import edition_report, segment_trend
from newsletter.store import Store
from newsletter.store.tables import (
    deliveries,
    edition_items,
    editions,
    items,
    metadata,
    subscribers,
    webhook_events,
)

LOCALES = ["bg", "en", "de", "ro", "tr", "el", "ru", "uk", "ka"]
READERS = 1000
STORIES = 10
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
#: kind -> share of an edition's events
MIX = [
    ("delivered", 0.10),
    ("deferred", 0.01),
    ("soft_bounce", 0.005),
    ("hard_bounce", 0.003),
    ("complaint", 0.001),
    ("unsubscribe", 0.001),
    ("opened", 0.48),
    ("clicked", 0.40),
]


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Any:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def seed(store: Store, n_editions: int, n_events: int) -> int:
    """The segment's editions, readers and events; returns the latest edition's id."""
    rng = random.Random(17)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(subscribers),
            [
                {
                    "email": f"reader{i}@example.org",
                    "name": "Reader",
                    "locale": LOCALES[i % len(LOCALES)],
                    "organisation": "",
                    "country": "BG",
                    "lists": ["members"],
                    "tags": [],
                    "status": "active",
                    "consent_source": "bench",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(READERS)
            ],
        )
        sub_ids = list(
            conn.execute(sa.select(subscribers.c.id).order_by(subscribers.c.id)).scalars()
        )
    per_edition = n_events // n_editions
    last = 0
    for e in range(n_editions):
        when = NOW - timedelta(days=7 * (n_editions - e))
        with store.engine.begin() as conn:
            edition_id = int(
                conn.execute(
                    sa.insert(editions).values(
                        segment="members",
                        period=f"p{e:03d}",
                        status="finished",
                        created_at=when,
                        finished_at=when,
                    )
                ).inserted_primary_key[0]
            )
            links = []
            for s in range(STORIES):
                link = f"https://cluster.example.org/{e}/{s}"
                item_id = conn.execute(
                    sa.insert(items).values(
                        source="news",
                        guid=f"{e}-{s}",
                        link=link,
                        title=f"Story {e}.{s}",
                        summary_html="",
                        body_html="",
                        published_at=when,
                        lang="bg",
                        tags=[],
                        content_hash=f"{e}-{s}",
                        first_seen_at=when,
                        updated_at=when,
                    )
                ).inserted_primary_key[0]
                conn.execute(
                    sa.insert(edition_items).values(
                        edition_id=edition_id, item_id=item_id, position=s, group_key=link
                    )
                )
                links.append(link)
            conn.execute(
                sa.insert(deliveries),
                [
                    {
                        "edition_id": edition_id,
                        "subscriber_id": sid,
                        "locale": LOCALES[i % len(LOCALES)],
                        "status": "sent",
                        "sent_at": when,
                        "updated_at": when,
                    }
                    for i, sid in enumerate(sub_ids)
                ],
            )
            dels = list(
                conn.execute(
                    sa.select(
                        deliveries.c.id, deliveries.c.locale, deliveries.c.subscriber_id
                    ).where(deliveries.c.edition_id == edition_id)
                ).all()
            )
            rows = []
            for kind, share in MIX:
                for k in range(int(per_edition * share)):
                    d = dels[rng.randrange(len(dels))]
                    rows.append(
                        {
                            "provider": "first-party" if kind == "clicked" else "sendgrid",
                            "event_id": f"{edition_id}-{kind}-{k}",
                            "kind": kind,
                            "subscriber_id": d.subscriber_id,
                            "occurred_at": when,
                            "received_at": when,
                            "edition_id": edition_id,
                            "delivery_id": d.id,
                            "locale": d.locale,
                            "story": links[rng.randrange(STORIES)] if kind == "clicked" else None,
                            "machine": kind == "opened" and k % 3 == 0,
                        }
                    )
            for chunk in _chunks(rows):
                conn.execute(sa.insert(webhook_events), chunk)
        last = edition_id
    return last


def timed(fn: Any, runs: int) -> float:
    """Median seconds of ``runs`` calls."""
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        took.append(time.perf_counter() - start)
    return statistics.median(took)


def bench(url: str, settings: Settings, args: argparse.Namespace, label: str) -> None:
    with Store.open(url) as store:
        start = time.perf_counter()
        latest = seed(store, args.editions, args.events)
        with store.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(webhook_events)).scalar()
        if store.engine.dialect.name == "postgresql":
            # what autovacuum does after a bulk load: statistics and the visibility map
            # (without it the covering index still reads the heap for every row)
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        print(f"{label}: seeded {total:,} events in {time.perf_counter() - start:.1f} s")
        one = timed(lambda: edition_report(settings, store, latest), args.runs)
        trend = timed(lambda: segment_trend(store, "members", args.editions), args.runs)
        click = timed(
            lambda: store.engagement.record(
                "clicked",
                edition_id=latest,
                locale="bg",
                delivery_id=None,
                story="https://cluster.example.org/x",
                at=NOW,
            ),
            max(args.runs, 50),
        )
        print(
            f"{label}: editions report (1 edition, {total // args.editions:,} events) "
            f"{one * 1000:.0f} ms; report --segment --last {args.editions} "
            f"({total:,} events) {trend * 1000:.0f} ms; one recorded click {click * 1000:.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--editions", type=int, default=100)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = from_dict(
            {
                "organisation": {
                    "name": "Bench",
                    "from_email": "news@example.org",
                    "website": "https://example.org",
                },
                "tracking": {"clicks": True, "opens": True},
            },
            Path(tmp) / "config.toml",
        )
        if not args.no_sqlite:
            bench(f"sqlite:///{Path(tmp) / 'bench.db'}", settings, args, "SQLite")
        if args.postgres:
            engine = sa.create_engine(
                args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
            )
            with engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            metadata.drop_all(engine)
            engine.dispose()
            bench(args.postgres, settings, args, "PostgreSQL")


if __name__ == "__main__":
    main()
