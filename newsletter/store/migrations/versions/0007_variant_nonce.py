"""unforgeable markers: the marker nonce of each stored variant

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 10:00:00.000000

Variants stored before this revision get ``nonce = ''``: their fixed-form markers could
have been written by a story as well as by the template, so they are never personalized
(the archive shows them as text; sending them is refused).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # plain ADD COLUMN with a default works on SQLite without rebuilding the table
    op.add_column(
        "variants",
        sa.Column("nonce", sa.String(length=64), nullable=False, server_default=""),
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("variants") as batch:
        batch.drop_column("nonce")
