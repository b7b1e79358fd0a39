"""engagement: webhook_events rows linked to edition, delivery, locale and story; folded counts

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-07 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("edition_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("delivery_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("story", sa.String(length=2000), nullable=True))
        batch.add_column(
            sa.Column("machine", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_foreign_key(
            "fk_webhook_events_edition_id_editions",
            "editions",
            ["edition_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            "fk_webhook_events_delivery_id_deliveries",
            "deliveries",
            ["delivery_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(
            "ix_webhook_events_edition_kind", ["edition_id", "kind", "machine", "delivery_id"]
        )
        batch.create_index("ix_webhook_events_delivery_id", ["delivery_id"])
    op.create_table(
        "engagement_counts",
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("story", sa.String(length=2000), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("readers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["edition_id"],
            ["editions.id"],
            name="fk_engagement_counts_edition_id_editions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "edition_id", "locale", "story", "kind", "machine", name="pk_engagement_counts"
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("engagement_counts")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_index("ix_webhook_events_delivery_id")
        batch.drop_index("ix_webhook_events_edition_kind")
        batch.drop_constraint("fk_webhook_events_delivery_id_deliveries", type_="foreignkey")
        batch.drop_constraint("fk_webhook_events_edition_id_editions", type_="foreignkey")
        batch.drop_column("machine")
        batch.drop_column("story")
        batch.drop_column("locale")
        batch.drop_column("delivery_id")
        batch.drop_column("edition_id")
