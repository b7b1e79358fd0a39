"""desk: staff accounts, server-side sessions and the audit log

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-07 05:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import newsletter.store.tables

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_DT = newsletter.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "desk_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("locales", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.Column("updated_at", UTC_DT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_desk_users_email")),
    )
    op.create_table(
        "desk_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.Column("last_seen_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["desk_users.id"],
            name=op.f("fk_desk_sessions_user_id_desk_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_desk_sessions")),
    )
    op.create_index("ix_desk_sessions_user_id", "desk_sessions", ["user_id"])
    op.create_table(
        "desk_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTC_DT, nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_audit")),
    )
    op.create_index("ix_desk_audit_at", "desk_audit", ["at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_desk_audit_at", table_name="desk_audit")
    op.drop_table("desk_audit")
    op.drop_index("ix_desk_sessions_user_id", table_name="desk_sessions")
    op.drop_table("desk_sessions")
    op.drop_table("desk_users")
