"""Durable, idempotent storage of CDS Hooks 2.0.1 feedback items (spec section "Feedback")."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from cds_service.errors import InvalidRequest
from cds_service.persistence.db import write_transaction
from cds_service.persistence.models import Feedback, HookCall, IssuedCard


@dataclass(frozen=True)
class FeedbackItem:
    """One validated feedback entry: card uuid, outcome and what came with it."""

    card: str
    outcome: str  # "accepted" | "overridden"
    outcome_timestamp: datetime
    accepted_suggestions: tuple[str, ...] = ()
    reason_system: str | None = None
    reason_code: str | None = None
    reason_display: str | None = None
    user_comment: str | None = None

    def content_hash(self) -> str:
        """SHA-256 over everything outside the key columns: an identical retry hashes alike."""
        rest = {
            "acceptedSuggestions": list(self.accepted_suggestions),
            "reason": [self.reason_system, self.reason_code, self.reason_display],
            "userComment": self.user_comment,
        }
        return hashlib.sha256(json.dumps(rest, sort_keys=True).encode("utf-8")).hexdigest()


def item_from_wire(data: Mapping[str, Any]) -> FeedbackItem:
    """Build an item from a feedback entry as loaded by the schema (camelCase keys)."""
    timestamp = _utc(data["outcomeTimestamp"])
    reason_block = data.get("overrideReason") or {}
    coding = reason_block.get("reason") or {}
    suggestions = tuple(str(s["id"]) for s in data.get("acceptedSuggestions") or ())
    return FeedbackItem(
        # The schema may load a UUID object; issued uuids are stored in canonical lower case.
        card=str(data["card"]).lower(),
        outcome=str(data["outcome"]),
        outcome_timestamp=timestamp,
        accepted_suggestions=suggestions,
        reason_system=_text(coding.get("system")),
        reason_code=_text(coding.get("code")),
        reason_display=_text(coding.get("display")),
        user_comment=_text(reason_block.get("userComment")),
    )


def _utc(value: str | datetime) -> datetime:
    """outcomeTimestamp in UTC; a date-time the calendar or UTC cannot hold is a 400."""
    try:
        parsed = datetime.fromisoformat(value.upper()) if isinstance(value, str) else value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(
            "invalid feedback", details={"outcomeTimestamp": ["not a valid date-time"]}
        ) from None


def _text(value: Any) -> str | None:
    # PostgreSQL text cannot hold NUL; JSON can. Dropping it beats refusing the feedback.
    return None if value is None else str(value).replace("\x00", "")


@dataclass(frozen=True)
class FeedbackResult:
    """What one feedback request did: rows written, retries ignored, cards not ours."""

    stored: int
    duplicates: int
    unknown_cards: list[str] = field(default_factory=list)


def record_feedback(
    engine: Engine, service_id: str, items: Sequence[FeedbackItem]
) -> FeedbackResult:
    """Insert every item in one committed transaction; identical retries are skipped."""
    with write_transaction(engine) as conn:
        return store_items(conn, service_id, items)


def store_items(conn: Connection, service_id: str, items: Sequence[FeedbackItem]) -> FeedbackResult:
    """The inserts of one feedback request, inside the caller's transaction."""
    unique = list(dict.fromkeys(items))
    now = datetime.now(UTC)
    known = _issued_cards(conn, service_id, {item.card for item in unique})
    rows = [_row(service_id, item, known, now) for item in unique]
    stored = _insert_ignoring_duplicates(conn, rows) if rows else 0
    unknown = sorted({item.card for item in unique} - known.keys())
    return FeedbackResult(stored=stored, duplicates=len(items) - stored, unknown_cards=unknown)


def _issued_cards(conn: Connection, service_id: str, uuids: set[str]) -> dict[str, str | None]:
    """Each known card's uuid, with the keyed hash of its patient."""
    if not uuids:
        return {}
    # A silent card was never sent: feedback naming its uuid matches nothing.
    query = (
        select(IssuedCard.c.card_uuid, HookCall.c.patient_hash)
        .select_from(IssuedCard.join(HookCall, HookCall.c.id == IssuedCard.c.hook_call_id))
        .where(
            IssuedCard.c.service_id == service_id,
            IssuedCard.c.card_uuid.in_(uuids),
            IssuedCard.c.mode == "active",
        )
    )
    return {str(uuid): patient for uuid, patient in conn.execute(query).all()}


def _row(
    service_id: str, item: FeedbackItem, known: Mapping[str, str | None], now: datetime
) -> dict[str, Any]:
    return {
        "service_id": service_id,
        "card_uuid": item.card,
        "outcome": item.outcome,
        "outcome_timestamp": item.outcome_timestamp,
        "content_hash": item.content_hash(),
        "accepted_suggestions": list(item.accepted_suggestions),
        "reason_system": item.reason_system,
        "reason_code": item.reason_code,
        "reason_display": item.reason_display,
        "user_comment": item.user_comment,
        "card_known": item.card in known,
        "received_at": now,
        "patient_hash": known.get(item.card),
    }


def _insert_ignoring_duplicates(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on the natural key; returns rows actually written."""
    written = conn.execute(_insert_feedback(conn.dialect.name), rows).all()
    return len(written)


@functools.cache
def _insert_feedback(dialect: str) -> Any:
    """The dialect's INSERT ... ON CONFLICT DO NOTHING RETURNING id, built once."""
    # Imported here: a SQLite deployment need not load the PostgreSQL dialect (~2 MiB).
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement: Any = postgresql.insert(Feedback).on_conflict_do_nothing(
            constraint="uq_feedback_natural_key"
        )
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(Feedback).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two supported dialects reach here
        statement = insert(Feedback)
    return statement.returning(Feedback.c.id)
