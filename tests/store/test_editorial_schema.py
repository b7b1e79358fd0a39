"""Migration 0011 builds exactly the editorial tables that tables.py declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from newsletter.store import Store
from newsletter.store.tables import metadata

EDITORIAL = {"desk_stories", "item_versions", "hidden_items", "edition_plans"}
APPROVAL_COLUMNS = {"approval_requested_at", "approval_deadline", "approved_by", "approved_at"}


def _touches(diff: Any) -> bool:
    # ("add_table", Table), ("add_column", schema, table, Column), ...; nested lists for
    # column modifications
    if isinstance(diff, list):
        return any(_touches(d) for d in diff)
    for part in diff:
        name = getattr(part, "name", part)
        if name in EDITORIAL or name in APPROVAL_COLUMNS:
            return True
        table = getattr(part, "table", None)
        if table is not None and table.name in EDITORIAL:
            return True
    return False


def test_the_migration_matches_the_declared_editorial_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if _touches(d)] == []
