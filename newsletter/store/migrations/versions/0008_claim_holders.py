"""claim holders: host, pid, start time and heartbeat of the process holding a row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import newsletter.store.tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_DT = newsletter.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("holder_host", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("holder_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("holder_started", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", UTC_DT, nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("holder_started")
        batch.drop_column("holder_pid")
        batch.drop_column("holder_host")
