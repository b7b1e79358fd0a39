"""scheduler: single-instance locks and the record of scheduled runs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import newsletter.store.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_DT = newsletter.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "locks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", UTC_DT, nullable=False),
        sa.Column("heartbeat_at", UTC_DT, nullable=False),
        sa.Column("expires_at", UTC_DT, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_locks")),
    )
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=100), nullable=False),
        sa.Column("scheduled_for", UTC_DT, nullable=False),
        sa.Column("started_at", UTC_DT, nullable=True),
        sa.Column("finished_at", UTC_DT, nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_runs")),
    )
    op.create_index("ix_schedule_runs_job_id", "schedule_runs", ["job_id", "id"], unique=False)
    op.create_index("ix_schedule_runs_status", "schedule_runs", ["status"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_schedule_runs_status", table_name="schedule_runs")
    op.drop_index("ix_schedule_runs_job_id", table_name="schedule_runs")
    op.drop_table("schedule_runs")
    op.drop_table("locks")
