"""provider webhooks: webhook_events, provider event on deliveries

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import newsletter.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_DT = newsletter.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", UTC_DT, nullable=False),
        sa.Column("received_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_webhook_events_subscriber_id_subscribers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("provider", "event_id", name="uq_webhook_events_provider_event_id"),
    )
    op.create_index(
        "ix_webhook_events_subscriber_kind",
        "webhook_events",
        ["subscriber_id", "kind"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_events_received_at", "webhook_events", ["received_at"], unique=False
    )
    # plain ADD COLUMN (nullable) works on SQLite without rebuilding the table
    op.add_column("deliveries", sa.Column("provider_event", sa.String(length=20), nullable=True))
    op.add_column("deliveries", sa.Column("provider_event_at", UTC_DT, nullable=True))
    op.create_index(
        "ix_deliveries_provider_message_id",
        "deliveries",
        ["provider_message_id"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_deliveries_provider_message_id", table_name="deliveries")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("provider_event_at")
        batch_op.drop_column("provider_event")
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    op.drop_index("ix_webhook_events_subscriber_kind", table_name="webhook_events")
    op.drop_table("webhook_events")
