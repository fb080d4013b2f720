"""Builders shared by the persistence tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from cds_service.persistence.audit import AuditEntry, CardEntry


def table_count(engine: Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(conn.execute(text(sql)).scalar_one())


def audit_entry(
    *cards: tuple[str, str],
    service: str = "myopathy-patient-view",
    at: datetime | None = None,
    patient_hash: str | None = "0" * 64,
) -> AuditEntry:
    """A hook call that issued cards given as (card uuid, recommendation id)."""
    return AuditEntry(
        hook_instance=str(uuid.uuid4()),
        service_id=service,
        hook="patient-view",
        started_at=at or datetime.now(UTC),
        duration_ms=12.5,
        patient_hash=patient_hash,
        knowledge_version="test-1",
        missing_inputs={"weight": "not in prefetch"},
        cards=tuple(CardEntry(uuid=u, indicator="warning", recommendation_ids=(r,)) for u, r in cards),
    )


def feedback(
    card: str,
    outcome: str = "overridden",
    *,
    at: str = "2026-11-20T10:00:00Z",
    reason: str | None = "not-applicable",
    comment: str | None = None,
    suggestion: str = "s-1",
) -> dict[str, Any]:
    """A feedback item as the schema loads it."""
    item: dict[str, Any] = {"card": card, "outcome": outcome, "outcomeTimestamp": at}
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": suggestion}]
    elif reason or comment:
        block: dict[str, Any] = {}
        if reason:
            block["reason"] = {"system": "http://example.org/override", "code": reason}
        if comment:
            block["userComment"] = comment
        item["overrideReason"] = block
    return item
