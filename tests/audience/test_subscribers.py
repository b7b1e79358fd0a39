"""Subscribers: address validation, CSV import with bad rows, export, segments."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.audience.segments import matches, recipients
from newsletter.audience.subscribers import export_csv, import_csv, normalize_email
from newsletter.config import Rule, Segment
from newsletter.errors import SubscriberError
from newsletter.models import NewSubscriber, SubscriberStatus
from newsletter.store import Store

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
HEADER = "email,name,locale,organisation,country,lists,tags,status,consent_at,consent_source\n"


def csv_file(tmp_path: Path, body: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_normalize_email() -> None:
    assert normalize_email("  Ivan.Petrov@Example.ORG ") == "ivan.petrov@example.org"
    with pytest.raises(SubscriberError, match="invalid email"):
        normalize_email("ivan@@example.org")


def test_import_keeps_good_rows_and_reports_each_bad_row(store: Store, tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "ana@example.org,Ана Петрова,bg,Варна Солар,BG,members,solar,active,"
        "2025-03-14T10:22:00+02:00,form\n"
        "not-an-address,Bad,bg,,BG,members,,active,,\n"
        "eva@example.com,Eva,xx_YY_ZZ,,DE,partners,,active,,\n"
        "ion@example.com,Ion,ro,,ROU,partners,,active,,\n"
        "maria@example.org,Мария,bg,,BG,members,,sleeping,,\n"
        "ANA@example.org,Ана,bg,,BG,board,,active,,\n"
        "kostas@example.com,Κώστας,el,,GR,partners,,active,2025-05-01,\n"
        "hans@example.com,Hans,de,,DE,partners,,active,,\n",
    )
    report = import_csv(store, path, list_name="newsletter", default_locale="bg", now=NOW)
    assert (report.added, report.updated) == (2, 0)
    assert [e.line for e in report.errors] == [3, 4, 5, 6, 7, 8]
    reasons = [e.reason for e in report.errors]
    assert "invalid email" in reasons[0]
    assert "locale" in reasons[1]
    assert "ISO" in reasons[2]
    assert "status" in reasons[3]
    assert "line 2" in reasons[4]
    assert "time zone" in reasons[5]
    ana = store.subscribers.find("ana@example.org")
    assert ana is not None and ana.lists == ("members", "newsletter") and ana.name == "Ана Петрова"


def test_reimport_never_changes_status_or_loses_data(store: Store, tmp_path: Path) -> None:
    store.subscribers.add(
        NewSubscriber(email="ana@example.org", name="Ана", locale="bg", lists=("members",)), NOW
    )
    store.subscribers.set_status(
        "ana@example.org", SubscriberStatus.UNSUBSCRIBED, source="test", now=NOW
    )
    path = csv_file(tmp_path, "ana@example.org,,en,Варна Солар,BG,partners,,active,,\n")
    report = import_csv(store, path, list_name=None, default_locale="bg", now=NOW)
    assert report.updated == 1
    ana = store.subscribers.find("ana@example.org")
    assert ana is not None
    assert ana.status is SubscriberStatus.UNSUBSCRIBED
    assert ana.name == "Ана" and ana.locale == "bg" and ana.organisation == "Варна Солар"
    assert ana.lists == ("members", "partners")


def test_header_without_email_or_with_unknown_column(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,locale\nx,bg\n", encoding="utf-8")
    with pytest.raises(SubscriberError, match=r"line 1.*email"):
        import_csv(store, bad, list_name=None, default_locale="bg", now=NOW)
    bad.write_text("email,phone\nx@example.org,1\n", encoding="utf-8")
    with pytest.raises(SubscriberError, match="phone"):
        import_csv(store, bad, list_name=None, default_locale="bg", now=NOW)


def test_sample_lists_import_cleanly(store: Store) -> None:
    root = Path(__file__).resolve().parents[2] / "subscribers"
    total = 0
    for name in ("members", "partners"):
        report = import_csv(
            store, root / f"{name}.csv", list_name=name, default_locale="bg", now=NOW
        )
        assert report.errors == []
        total += report.added
    assert total >= 50
    locales = {s.locale for s in store.subscribers.iter()}
    assert {"bg", "en", "ro", "tr", "el", "de"} <= locales


def test_export_round_trips_through_import(store: Store, tmp_path: Path) -> None:
    store.subscribers.add(
        NewSubscriber(
            email="ana@example.org",
            name='Ана, "Варна"',
            locale="bg",
            country="BG",
            lists=("members",),
            tags=("solar", "board"),
            consent_at=NOW,
            consent_source="form",
        ),
        NOW,
    )
    buf = io.StringIO()
    assert export_csv(store.subscribers.iter(), buf) == 1
    path = tmp_path / "export.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    report = import_csv(store, path, list_name=None, default_locale="bg", now=NOW)
    assert (report.unchanged, report.errors) == (1, [])


def test_segment_rules(store: Store) -> None:
    def add(email: str, country: str, lists: tuple[str, ...], status: SubscriberStatus) -> None:
        store.subscribers.add(
            NewSubscriber(email=email, locale="en", country=country, lists=lists, status=status),
            NOW,
        )

    add("a@example.org", "BG", ("partners",), SubscriberStatus.ACTIVE)
    add("b@example.org", "RO", ("partners",), SubscriberStatus.ACTIVE)
    add("c@example.org", "RO", ("members",), SubscriberStatus.ACTIVE)
    add("d@example.org", "GR", ("partners",), SubscriberStatus.UNSUBSCRIBED)
    seg = Segment(
        name="partners-abroad",
        rules=[
            Rule(field="lists", op="contains", value="partners"),
            Rule(field="country", op="!=", value="bg"),
        ],
    )
    assert [s.email for s in recipients(store, seg, batch_size=1)] == ["b@example.org"]
    sub = store.subscribers.find("c@example.org")
    assert sub is not None
    assert matches(
        Segment(name="x", rules=[Rule(field="country", op="in", value=["RO", "GR"])]), sub
    )
    assert not matches(
        Segment(name="x", rules=[Rule(field="lists", op="not contains", value="members")]), sub
    )
