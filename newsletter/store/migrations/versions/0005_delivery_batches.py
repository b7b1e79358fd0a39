"""delivery batches: batch_key on deliveries, so a batch that must go again goes whole

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("deliveries", sa.Column("batch_key", sa.String(length=200), nullable=True))
    op.create_index(
        "ix_deliveries_edition_batch", "deliveries", ["edition_id", "batch_key"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_deliveries_edition_batch", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("batch_key")
