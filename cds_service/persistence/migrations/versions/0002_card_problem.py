"""The problem each issued card is about, beside its recommendation id (issue 14 snooze).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_card") as batch:
        batch.add_column(sa.Column("problem", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_card") as batch:
        batch.drop_column("problem")
