"""Feedback, hook-call audit trail, issued cards and service secrets.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cds_service.persistence.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_hook_call",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("hook", sa.String(128), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("patient_hash", sa.String(64), nullable=True),
        sa.Column("knowledge_version", sa.String(128), nullable=True),
        sa.Column("missing_inputs", sa.JSON(), nullable=False),
        sa.Column("card_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_hook_call"),
    )
    op.create_index("ix_audit_hook_call_hook_instance", "audit_hook_call", ["hook_instance"])
    op.create_index("ix_audit_hook_call_started_at", "audit_hook_call", ["started_at"])
    op.create_index("ix_audit_hook_call_patient_hash", "audit_hook_call", ["patient_hash"])

    op.create_table(
        "audit_card",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hook_call_id", sa.Integer(), nullable=False),
        sa.Column("card_uuid", sa.String(128), nullable=True),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("recommendation_id", sa.String(64), nullable=True),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hook_call_id"],
            ["audit_hook_call.id"],
            name="fk_audit_card_hook_call_id_audit_hook_call",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_card"),
    )
    op.create_index("ix_audit_card_hook_call_id", "audit_card", ["hook_call_id"])
    op.create_index("ix_audit_card_card_uuid", "audit_card", ["card_uuid"])
    op.create_index("ix_audit_card_issued_at", "audit_card", ["issued_at"])
    op.create_index("ix_audit_card_rec_issued", "audit_card", ["recommendation_id", "issued_at"])

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_timestamp", UTCDateTime(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("reason_system", sa.Text(), nullable=True),
        sa.Column("reason_code", sa.Text(), nullable=True),
        sa.Column("reason_display", sa.Text(), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.Column("card_known", sa.Boolean(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint(
            "service_id",
            "card_uuid",
            "outcome",
            "outcome_timestamp",
            "content_hash",
            name="uq_feedback_natural_key",
        ),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])

    op.create_table(
        "service_secret",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_service_secret"),
    )


def downgrade() -> None:
    op.drop_table("service_secret")
    op.drop_index("ix_feedback_card_uuid", table_name="feedback")
    op.drop_table("feedback")
    for name in (
        "ix_audit_card_rec_issued",
        "ix_audit_card_issued_at",
        "ix_audit_card_card_uuid",
        "ix_audit_card_hook_call_id",
    ):
        op.drop_index(name, table_name="audit_card")
    op.drop_table("audit_card")
    for name in (
        "ix_audit_hook_call_patient_hash",
        "ix_audit_hook_call_started_at",
        "ix_audit_hook_call_hook_instance",
    ):
        op.drop_index(name, table_name="audit_hook_call")
    op.drop_table("audit_hook_call")
