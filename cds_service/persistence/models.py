"""Tables for feedback (CDS Hooks 2.0.1 "Feedback") and the hook-call audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class HookCall(Base):
    """One hook call as answered: who (hashed), what, when, which cards, what was missing."""

    __tablename__ = "audit_hook_call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hook_instance: Mapped[str] = mapped_column(String(128), index=True)
    service_id: Mapped[str] = mapped_column(String(128))
    hook: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    duration_ms: Mapped[float] = mapped_column(Float)
    # HMAC-SHA256 of the patient id under AUDIT_HASH_KEY: linkable, never reversible.
    patient_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    knowledge_version: Mapped[str | None] = mapped_column(String(128))
    missing_inputs: Mapped[dict[str, str]] = mapped_column(JSON)
    card_count: Mapped[int] = mapped_column(Integer)


class IssuedCard(Base):
    """A card sent in a hook response, one row per recommendation id it carries."""

    __tablename__ = "audit_card"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hook_call_id: Mapped[int] = mapped_column(
        ForeignKey("audit_hook_call.id", ondelete="CASCADE"), index=True
    )
    card_uuid: Mapped[str | None] = mapped_column(String(128), index=True)
    service_id: Mapped[str] = mapped_column(String(128))
    recommendation_id: Mapped[str | None] = mapped_column(String(64))
    indicator: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = (Index("ix_audit_card_rec_issued", "recommendation_id", "issued_at"),)


class Feedback(Base):
    """One feedback item; the natural key makes an identical retry a no-op."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(String(128))
    card_uuid: Mapped[str] = mapped_column(String(128), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    # SHA-256 of the item's remaining content (suggestions, reason, comment).
    content_hash: Mapped[str] = mapped_column(String(64))
    accepted_suggestions: Mapped[list[str]] = mapped_column(JSON)
    # Text: whatever length a client sends must not turn into a refused (503) write.
    reason_system: Mapped[str | None] = mapped_column(Text)
    reason_code: Mapped[str | None] = mapped_column(Text)
    reason_display: Mapped[str | None] = mapped_column(Text)
    user_comment: Mapped[str | None] = mapped_column(Text)
    # False when no audit record shows the service issued this card (yet).
    card_known: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint(
            "service_id",
            "card_uuid",
            "outcome",
            "outcome_timestamp",
            "content_hash",
            name="uq_feedback_natural_key",
        ),
    )


class ServiceSecret(Base):
    """Generated secrets that must outlive a process (the audit hash key on PostgreSQL)."""

    __tablename__ = "service_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
