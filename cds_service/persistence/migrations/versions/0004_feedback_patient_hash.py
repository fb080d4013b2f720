"""The patient (keyed hash) of each feedback item, so the snooze lookup starts from overrides.

Before, the lookup joined every past hook call of the patient to its cards: a chart opened
thousands of times made every later open read them all.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BACKFILL = """
UPDATE feedback SET patient_hash = (
    SELECT audit_hook_call.patient_hash
    FROM audit_card JOIN audit_hook_call ON audit_hook_call.id = audit_card.hook_call_id
    WHERE audit_card.card_uuid = feedback.card_uuid
      AND audit_card.service_id = feedback.service_id
    LIMIT 1
)
"""


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("patient_hash", sa.String(64), nullable=True))
    op.execute(_BACKFILL)
    op.create_index(
        "ix_feedback_patient_snooze", "feedback", ["patient_hash", "outcome", "outcome_timestamp"]
    )


def downgrade() -> None:
    op.drop_index("ix_feedback_patient_snooze", table_name="feedback")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("patient_hash")
