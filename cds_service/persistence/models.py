"""Tables for feedback (CDS Hooks 2.0.1 "Feedback") and the hook-call audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations are portable between SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects (SQLite keeps no zone, PostgreSQL does)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: persistence stores aware UTC times only")
        value = value.astimezone(UTC)
        # SQLite compares the stored text: keep one zone-less format so ranges sort right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLAlchemy Core tables, not ORM classes: nothing here needs the ORM, and importing it
# would add about 6 MiB to every worker.
metadata = MetaData(naming_convention=NAMING)

# One hook call as answered: who (hashed), what, when, which cards, what was missing.
HookCall = Table(
    "audit_hook_call",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hook_instance", String(128), nullable=False, index=True),
    Column("service_id", String(128), nullable=False),
    Column("hook", String(128), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False, index=True),
    Column("duration_ms", Float, nullable=False),
    # HMAC-SHA256 of the patient id under AUDIT_HASH_KEY: linkable, never reversible.
    Column("patient_hash", String(64), nullable=True, index=True),
    Column("knowledge_version", String(128), nullable=True),
    Column("missing_inputs", JSON, nullable=False),
    Column("card_count", Integer, nullable=False),
)

# A card sent in a hook response, one row per recommendation id it carries.
IssuedCard = Table(
    "audit_card",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "hook_call_id",
        Integer,
        ForeignKey("audit_hook_call.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("card_uuid", String(128), nullable=True, index=True),
    Column("service_id", String(128), nullable=False),
    Column("recommendation_id", String(64), nullable=True),
    # What the card is about within its recommendation ("cardiac", "benzodiazepine"): the
    # key, with the patient hash, under which an override snoozes it.
    Column("problem", String(64), nullable=True),
    Column("indicator", String(16), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False, index=True),
    # Rollout mode when issued: "active" returned, "silent" withheld (would have fired).
    Column("mode", String(8), nullable=False, server_default="active"),
    Index("ix_audit_card_rec_issued", "recommendation_id", "issued_at"),
)

# One feedback item; the natural key makes an identical retry a no-op.
Feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(128), nullable=False),
    Column("card_uuid", String(128), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("outcome_timestamp", UTCDateTime(), nullable=False),
    # SHA-256 of the item's remaining content (suggestions, reason, comment).
    Column("content_hash", String(64), nullable=False),
    Column("accepted_suggestions", JSON, nullable=False),
    # Text: whatever length a client sends must not turn into a refused (503) write.
    Column("reason_system", Text, nullable=True),
    Column("reason_code", Text, nullable=True),
    Column("reason_display", Text, nullable=True),
    Column("user_comment", Text, nullable=True),
    # Whether the audit trail held the card when this feedback arrived (never updated after):
    # the card's audit record may commit later, so the report decides known-ness by join.
    Column("card_known", Boolean, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    # The keyed hash of the card's patient (its hook call's), when the card was known: the
    # snooze lookup starts from a patient's overrides, not from every call of the patient.
    Column("patient_hash", String(64), nullable=True),
    UniqueConstraint(
        "service_id",
        "card_uuid",
        "outcome",
        "outcome_timestamp",
        "content_hash",
        name="uq_feedback_natural_key",
    ),
    Index("ix_feedback_patient_snooze", "patient_hash", "outcome", "outcome_timestamp"),
)

# Generated secrets that must outlive a process (the audit hash key on PostgreSQL).
ServiceSecret = Table(
    "service_secret",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
