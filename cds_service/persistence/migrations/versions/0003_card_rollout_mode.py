"""Rollout mode of each audited card: active (returned) or silent (would have fired).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_card") as batch:
        batch.add_column(sa.Column("mode", sa.String(8), nullable=False, server_default="active"))


def downgrade() -> None:
    with op.batch_alter_table("audit_card") as batch:
        batch.drop_column("mode")
