"""One digest per person per period: the demo's associate member, who is on both the
``members`` and ``partners`` lists, gets one weekly digest, whichever edition goes first.

Real store (SQLite, and PostgreSQL when configured), the demo's own config.toml, sample
lists and news, the outbox provider; clocks are fixed in week 2026-W49.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from schedule.support import running

from newsletter.audience.explain import explain
from newsletter.audience.subscribers import sync_lists
from newsletter.config import Settings, from_dict
from newsletter.digest.edition import Digest, SegmentResult
from newsletter.digest.pipeline import run_digest
from newsletter.digest.trial import dry_run_segment
from newsletter.errors import ConfigError
from newsletter.gather.run import gather
from newsletter.models import NewSubscriber
from newsletter.send.control import cancel_edition
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from newsletter.store.tables import deliveries, editions, subscribers

ROOT = Path(__file__).resolve().parents[2]
ENGEL = "m.engel@sonnenfeld-energie.example.com"
#: Monday and Tuesday of 2026-W49, mid-morning in Sofia and Bucharest
MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
TUESDAY = MONDAY + timedelta(days=1)


def demo(tmp_path: Path, db_url: str, edit: Any = None) -> Settings:
    """The project's config.toml on ``db_url``; ``edit`` may change the parsed TOML."""
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    raw["paths"]["templates"] = str(ROOT / "templates")
    raw["database"] = {"url": db_url, "url_env": "NEWSLETTER_TEST_UNUSED_URL"}
    for src in raw["sources"]:
        src["path"] = str(ROOT / src["path"])
    for lst in raw["lists"]:
        if "file" in lst:
            lst["file"] = str(ROOT / lst["file"])
    raw["provider"] = {"name": "outbox", "path": str(tmp_path / "outbox")}
    if edit is not None:
        edit(raw)
    return from_dict(raw, tmp_path / "config.toml")


def segment_entry(raw: dict[str, Any], name: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(s for s in raw["segments"] if s["name"] == name)
    return entry


def allow_partners(raw: dict[str, Any]) -> None:
    segment_entry(raw, "partners-abroad")["overlap"] = "allow"


def partners_first(raw: dict[str, Any]) -> None:
    raw["segments"].reverse()


def send(
    settings: Settings,
    store: Store,
    when: datetime,
    segments: list[str] | None = None,
    item_ids: list[int] | None = None,
) -> list[SegmentResult]:
    """A real digest run at ``when``: lists merged, sources gathered, editions sent."""
    sync_lists(settings, store, when)
    assert not gather(settings, store, now=when).failed
    digest = Digest(
        settings,
        store,
        provider=OutboxProvider(settings.provider.path),
        signer=TokenSigner(["k1"]),
        clock=lambda: when,
    )
    return asyncio.run(digest.run(segments, item_ids=item_ids))


def digests_of(store: Store, email: str) -> list[tuple[str, str]]:
    """(segment, period) of every edition with a delivery row for ``email``."""
    query = (
        sa.select(editions.c.segment, editions.c.period)
        .join(deliveries, deliveries.c.edition_id == editions.c.id)
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .where(subscribers.c.email == email)
        .order_by(editions.c.id)
    )
    with store.engine.connect() as conn:
        return [(row.segment, row.period) for row in conn.execute(query)]


def rows_per_person_and_period(store: Store) -> Counter[tuple[int, str]]:
    query = sa.select(deliveries.c.subscriber_id, editions.c.period).join(
        editions, editions.c.id == deliveries.c.edition_id
    )
    with store.engine.connect() as conn:
        return Counter((row.subscriber_id, row.period) for row in conn.execute(query))


def test_demo_sends_the_associate_member_one_digest_a_week(tmp_path: Path, db_url: str) -> None:
    settings = demo(tmp_path, db_url)
    with Store.open(db_url) as store:
        members, partners = send(settings, store, TUESDAY)
        assert members.sent is not None and members.sent.finished
        assert partners.sent is not None and partners.sent.finished
        assert digests_of(store, ENGEL) == [("members", "2026-W49")]
        # nobody at all has two rows in one week, and the other partners still get theirs
        assert max(rows_per_person_and_period(store).values()) == 1
        assert sum(partners.recipients.values()) == 16
    engel_mails = sorted(p.parent.name for p in (tmp_path / "outbox").rglob(f"*{ENGEL}.eml"))
    assert engel_mails == ["0001-members-2026-W49"]


@pytest.mark.parametrize("first", ["members", "partners-abroad"])
def test_an_edition_planned_in_a_later_run_sends_no_second_digest(
    tmp_path: Path, db_url: str, first: str
) -> None:
    settings = demo(tmp_path, db_url)
    second = "members" if first == "partners-abroad" else "partners-abroad"
    with Store.open(db_url) as store:
        send(settings, store, MONDAY, [first])
        send(settings, store, TUESDAY, [second])
        # decided by segment order, not by which edition went first
        assert digests_of(store, ENGEL) == [("members", "2026-W49")]


def test_overlap_allow_sends_both_digests(tmp_path: Path, db_url: str) -> None:
    settings = demo(tmp_path, db_url, allow_partners)
    with Store.open(db_url) as store:
        send(settings, store, TUESDAY)
        assert digests_of(store, ENGEL) == [
            ("members", "2026-W49"),
            ("partners-abroad", "2026-W49"),
        ]


def test_segment_order_decides_where_an_overlap_goes(tmp_path: Path, db_url: str) -> None:
    settings = demo(tmp_path, db_url, partners_first)
    with Store.open(db_url) as store:
        partners, members = send(settings, store, TUESDAY)
        assert (partners.segment, members.segment) == ("partners-abroad", "members")
        assert digests_of(store, ENGEL) == [("partners-abroad", "2026-W49")]
        assert sum(members.recipients.values()) == 36


def test_a_row_in_another_exclusive_edition_of_the_week_keeps_them_out(
    tmp_path: Path, db_url: str
) -> None:
    # Monday the config put partners-abroad first; by Tuesday the operator swapped the
    # order back. The order alone would now send a members digest too.
    with Store.open(db_url) as store:
        send(demo(tmp_path, db_url, partners_first), store, MONDAY, ["partners-abroad"])
        settings = demo(tmp_path, db_url)
        send(settings, store, TUESDAY, ["members"])
        assert digests_of(store, ENGEL) == [("partners-abroad", "2026-W49")]
        report = explain(settings, store, TUESDAY, ["members"])
        (engel,) = [p for p in report.segments[0].members if p.email == ENGEL]
        assert not engel.receives
        assert "already has edition 1 of partners-abroad for 2026-W49" in engel.note
        # next week the order rule alone applies again
        send(settings, store, TUESDAY + timedelta(days=7), ["members", "partners-abroad"])
        assert digests_of(store, ENGEL)[-1] == ("members", "2026-W50")


def test_a_cancelled_edition_of_the_week_does_not_count(tmp_path: Path, db_url: str) -> None:
    settings = demo(tmp_path, db_url)
    with Store.open(db_url) as store:
        sync_lists(settings, store, MONDAY)
        engel = store.subscribers.find(ENGEL)
        assert engel is not None
        edition = store.editions.create("partners-abroad", "2026-W49", [], MONDAY)
        store.deliveries.plan(edition.id, [(engel.id, "de")], MONDAY)
        cancel_edition(store, edition.id, MONDAY)
        # also a removed segment's edition counts as exclusive while its row is live
        old = store.editions.create("retired-segment", "2026-W49", [], MONDAY)
        store.deliveries.plan(old.id, [(engel.id, "de")], MONDAY)
        report = explain(settings, store, TUESDAY, ["members"])
        (placed,) = [p for p in report.segments[0].members if p.email == ENGEL]
        assert "already has edition 2 of retired-segment" in placed.note
        store.deliveries.cancel(old.id, MONDAY)
        send(settings, store, TUESDAY, ["members"])
        assert ("members", "2026-W49") in digests_of(store, ENGEL)


def test_a_manual_send_to_one_segment_reaches_everyone_in_it(tmp_path: Path, db_url: str) -> None:
    settings = demo(tmp_path, db_url)
    with Store.open(db_url) as store:
        sync_lists(settings, store, TUESDAY)
        gather(settings, store, now=TUESDAY)
        item = store.items.list()[0]
        (res,) = send(settings, store, TUESDAY, ["partners-abroad"], item_ids=[item.id])
        assert res.period.startswith("manual-")
        assert digests_of(store, ENGEL) == [("partners-abroad", res.period)]


def test_dry_run_says_who_matched_more_than_one_segment_and_where_they_went(
    tmp_path: Path, db_url: str
) -> None:
    settings = demo(tmp_path, db_url)
    with Store.open(db_url) as store:
        sync_lists(settings, store, TUESDAY)
        gather(settings, store, now=TUESDAY)
        digest = Digest(settings, store, signer=TokenSigner(["k1"]), clock=lambda: TUESDAY)
        partners = dry_run_segment(digest, settings.segment("partners-abroad"))
        # three German readers on the partners list, one of whom goes to members
        assert partners.recipients["de"] == 2
        report = run_digest(
            settings, store=store, provider=OutboxProvider(tmp_path / "x"), dry_run=True
        )
        assert report.overlaps is not None
        assert report.overlaps.overlap_lines() == [
            "1 subscriber(s) matched more than one segment:",
            "  members + partners-abroad -> members (first in order): 1",
        ]
        assert digests_of(store, ENGEL) == []
        allowed = demo(tmp_path, db_url, allow_partners)
        lines = explain(allowed, store, TUESDAY, details=False).overlap_lines()
        assert (
            lines[1]
            == "  members + partners-abroad -> members, partners-abroad (overlap allowed): 1"
        )


def test_explain_lists_who_is_in_which_segment_and_why(tmp_path: Path, db_url: str) -> None:
    settings = demo(tmp_path, db_url)
    with Store.open(db_url) as store:
        report = explain(settings, store, TUESDAY, sync_files=True)
    members, partners = report.segments
    assert (members.matched, members.receiving) == (37, 37)
    assert (partners.matched, partners.receiving) == (17, 16)
    (engel,) = [p for p in partners.members if p.email == ENGEL]
    assert engel.rules == ["lists contains partners", "country != BG (DE)"]
    assert not engel.receives and engel.also == ["members"]
    assert engel.note == "also matches members, goes to members (first in order)"
    text = report.text_lines()
    assert "members (week 2026-W49, overlap exclusive): 37 match, 37 get it" in text
    assert (
        f"  - {ENGEL}: lists contains partners; country != BG (DE)"
        "  [also matches members, goes to members (first in order)]"
    ) in text
    assert (
        f"  + {ENGEL}: lists contains members  [also matches partners-abroad, goes to "
        "members (first in order)]" in text
    )
    data = json.loads(json.dumps(report.as_json()))
    assert data["overlaps"] == {
        "subscribers": 1,
        "routes": [
            {"matches": ["members", "partners-abroad"], "goes_to": ["members"], "subscribers": 1}
        ],
    }
    assert data["lists_merged"]["members"]["added"] == 40


def test_explain_escapes_control_characters_from_stored_data(tmp_path: Path, db_url: str) -> None:
    def no_board(raw: dict[str, Any]) -> None:
        segment_entry(raw, "members")["rules"].append(
            {"field": "tags", "op": "not contains", "value": "board"}
        )

    settings = demo(tmp_path, db_url, no_board)
    hostile = "x\x1b[2J\nFAKE: everyone gets it\r"
    with Store.open(db_url) as store:
        store.subscribers.add(
            NewSubscriber("mallory@example.com", lists=("members",), tags=(hostile,)), TUESDAY
        )
        report = explain(settings, store, TUESDAY, ["members"])
    (line,) = [ln for ln in report.text_lines() if "mallory@example.com" in ln]
    assert "\x1b" not in line and "\n" not in line and "\r" not in line
    assert "tags not contains board (x\\x1b[2J\\nFAKE: everyone gets it\\r)" in line
    placed = json.loads(json.dumps(report.as_json()))["segments"][0]["subscribers"][0]
    assert placed["rules"][1] == f"tags not contains board ({hostile})"


def test_an_unknown_overlap_value_is_one_line_naming_the_key(tmp_path: Path, db_url: str) -> None:
    def sometimes(raw: dict[str, Any]) -> None:
        segment_entry(raw, "partners-abroad")["overlap"] = "sometimes"

    with pytest.raises(ConfigError) as caught:
        demo(tmp_path, db_url, sometimes)
    message = str(caught.value)
    assert "\n" not in message
    assert "segments[1].overlap:" in message and "'sometimes'" in message
    assert '"exclusive"' in message and '"allow"' in message


def test_scheduled_runs_of_the_demo_send_one_digest_a_week(tmp_path: Path, db_url: str) -> None:
    def digests_only(raw: dict[str, Any]) -> None:
        # the digest jobs gather first; the hourly gather job adds only waiting time here
        raw["schedule"] = [j for j in raw["schedule"] if j["job"] == "digest"]

    settings = demo(tmp_path, db_url, digests_only)
    with Store.open(db_url) as store:
        # Sunday noon to Wednesday noon of 2026-W49: members-weekly fires Monday 09:00
        # Sofia, partners-weekly Tuesday 10:00 Bucharest
        with running(settings, store, datetime(2026, 11, 29, 10, 0, tzinfo=UTC)) as driver:
            driver.run_until(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
        assert [e.segment for e in reversed(store.editions.list())] == [
            "members",
            "partners-abroad",
        ]
        assert digests_of(store, ENGEL) == [("members", "2026-W49")]
        assert max(rows_per_person_and_period(store).values()) == 1
