"""editorial: desk stories, locale versions with review state, hidden items, next-edition
plans, and the approval columns of editions

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-07 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import newsletter.store.tables

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC_DT = newsletter.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("approval_requested_at", UTC_DT, nullable=True))
        batch.add_column(sa.Column("approval_deadline", UTC_DT, nullable=True))
        batch.add_column(sa.Column("approved_by", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("approved_at", UTC_DT, nullable=True))
    op.create_table(
        "desk_stories",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.Column("updated_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_desk_stories_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_desk_stories")),
    )
    op.create_table(
        "item_versions",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("original_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("source_lang", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=True),
        sa.Column("original_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.Column("reviewed_by", sa.String(length=320), nullable=True),
        sa.Column("reviewed_at", UTC_DT, nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_item_versions_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["original_id"],
            ["items.id"],
            name=op.f("fk_item_versions_original_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_versions")),
        sa.UniqueConstraint("original_id", "locale", name="uq_item_versions_original_locale"),
    )
    op.create_table(
        "hidden_items",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("hidden_by", sa.String(length=320), nullable=False),
        sa.Column("hidden_at", UTC_DT, nullable=False),
        sa.Column("reason", sa.String(length=500), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_hidden_items_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_hidden_items")),
    )
    op.create_table(
        "edition_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("lead_key", sa.String(length=500), nullable=True),
        sa.Column("excluded", sa.JSON(), nullable=False),
        sa.Column("ordering", sa.JSON(), nullable=False),
        sa.Column("intros", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.Column("updated_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["edition_id"],
            ["editions.id"],
            name=op.f("fk_edition_plans_edition_id_editions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edition_plans")),
    )
    op.create_index("ix_edition_plans_segment", "edition_plans", ["segment", "edition_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_edition_plans_segment", table_name="edition_plans")
    op.drop_table("edition_plans")
    op.drop_table("hidden_items")
    op.drop_table("item_versions")
    op.drop_table("desk_stories")
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
        batch.drop_column("approval_deadline")
        batch.drop_column("approval_requested_at")
