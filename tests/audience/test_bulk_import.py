"""Bulk import: batches of set queries give exactly what merging row by row gave.

Batches are made tiny here so every rule is exercised across batch boundaries: bad rows
at their physical lines, a repeat reported against the line it first appeared on, stored
subscribers merged (never their status), suppressed addresses left out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsletter.audience import subscribers as audience
from newsletter.audience.subscribers import import_csv, parse_row
from newsletter.models import NewSubscriber, SubscriberStatus
from newsletter.store import Store

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
HEADER = "email,name,locale,organisation,country,lists,tags,status"


def _new(email: str, **fields: object) -> NewSubscriber:
    row = {"email": email, **{k: str(v) for k, v in fields.items()}}
    return parse_row(row, 1, list_name=None, default_locale="bg")


@pytest.mark.parametrize("batch", [1, 3, 7, 5000])
def test_many_rows_across_batches_keep_lines_and_merge_rules(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(audience, "IMPORT_BATCH", batch)
    store.subscribers.merge(_new("kept@example.org", name="", lists="old"), NOW)
    store.subscribers.merge(_new("gone@example.org", status="unsubscribed"), NOW)
    store.suppressions.add("suppressed@example.org", "bounced", "test", NOW)
    rows = [HEADER]
    expected_errors: dict[int, str] = {}

    def line() -> int:  # the physical line the next row starts on
        return sum(r.count("\n") + 1 for r in rows) + 1

    for i in range(60):
        if i % 13 == 5:
            expected_errors[line()] = "invalid email address"
            rows.append(f"not-an-address-{i},Bad,bg,,BG,,,active")
        elif i % 17 == 3:  # a quoted cell over two lines: later rows are one line further
            rows.append(f'multi{i}@example.org,"Two\nlines",bg,,BG,,,active')
        else:
            rows.append(f"user{i}@example.org,Име {i},en,Org,BG,members,solar")
    repeat_line = line()
    rows.append("USER0@example.org,Again,en,,BG,,,active")
    rows += [
        "kept@example.org,Filled,en,,BG,new,,active",
        "gone@example.org,Back,en,,BG,,,active",
        "suppressed@example.org,No,en,,BG,,,active",
    ]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    report = import_csv(store, path, list_name="imported", default_locale="bg", now=NOW)

    assert {e.line: e.reason for e in report.errors}.keys() == {*expected_errors, repeat_line}
    for line, reason in expected_errors.items():
        assert reason in next(e.reason for e in report.errors if e.line == line)
    repeat = next(e for e in report.errors if e.line == repeat_line)
    assert "user0@example.org already appears on line 2" in repeat.reason
    assert (report.updated, report.suppressed) == (2, 1)
    assert report.rows == len(expected_errors) + 1 + report.added + 3
    kept = store.subscribers.find("kept@example.org")
    assert (
        kept is not None and kept.name == "Filled" and set(kept.lists) == {"old", "new", "imported"}
    )
    gone = store.subscribers.find("gone@example.org")
    assert gone is not None and gone.status is SubscriberStatus.UNSUBSCRIBED
    assert store.subscribers.find("suppressed@example.org") is None


def test_bulk_merge_gives_the_outcomes_of_one_by_one(store: Store, tmp_path: Path) -> None:
    later = NOW + timedelta(days=1)
    store.subscribers.merge(_new("a@example.org", tags="x"), NOW)
    store.subscribers.merge(_new("b@example.org", name="B"), NOW)
    news = [
        _new("a@example.org", tags="x"),  # unchanged
        _new("b@example.org", name="Other", organisation="Org"),  # fills organisation only
        _new("c@example.org"),  # added
    ]
    assert store.subscribers.merge_many(news, later) == ["unchanged", "updated", "added"]
    b = store.subscribers.find("b@example.org")
    assert b is not None and (b.name, b.organisation) == ("B", "Org")
    with pytest.raises(ValueError):
        store.subscribers.merge_many([news[0], news[0]], later)
