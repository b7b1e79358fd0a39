"""The hashed suppression list: no address stored, import and add refuse suppressed ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.audience.subscribers import import_csv
from newsletter.errors import SubscriberError
from newsletter.models import NewSubscriber
from newsletter.store import Store
from newsletter.store.suppressions import email_hash
from newsletter.store.tables import suppressions

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_add_contains_and_no_plain_address_stored(store: Store) -> None:
    assert not store.suppressions.contains("mila@example.org")
    assert store.suppressions.add("  Mila@Example.ORG ", "erased", "web", NOW) is True
    assert store.suppressions.add("mila@example.org", "bounced", "webhook", NOW) is False
    assert store.suppressions.contains("MILA@example.org")
    entry = store.suppressions.get("mila@example.org")
    assert entry is not None and entry.reason == "erased" and entry.created_at == NOW
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(suppressions)).all()
    assert len(rows) == 1
    assert "mila" not in " ".join(str(v) for v in rows[0])
    assert rows[0].email_hash == email_hash("mila@example.org")
    assert store.suppressions.remove("mila@example.org") is True
    assert not store.suppressions.contains("mila@example.org")


def test_import_and_add_do_not_readd_a_suppressed_address(store: Store, tmp_path: Path) -> None:
    store.suppressions.add("gone@example.org", "erased", "cli", NOW)
    path = tmp_path / "people.csv"
    path.write_text("email,name\ngone@example.org,Gone\nstays@example.org,Stays\n", "utf-8")
    report = import_csv(store, path, list_name="members", default_locale="bg", now=NOW)
    assert (report.added, report.suppressed, report.errors) == (1, 1, [])
    assert store.subscribers.find("gone@example.org") is None
    with pytest.raises(SubscriberError, match="suppression list"):
        store.subscribers.add(NewSubscriber(email="gone@example.org"), NOW)
