"""claim index: rows due to go again are found by a seek, not a scan of the edition

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 07:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_deliveries_edition_status_batch",
        "deliveries",
        ["edition_id", "status", "batch_key"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_deliveries_edition_status_batch", table_name="deliveries")
