"""Builders shared by the persistence tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from cds_service.persistence.audit import AuditEntry, CardEntry
from cds_service.persistence.models import metadata


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
        cards=tuple(
            CardEntry(uuid=u, indicator="warning", recommendation_ids=(r,)) for u, r in cards
        ),
    )


def feedback(
    card: str,
    outcome: str = "overridden",
    *,
    at: str = "2026-11-20T10:00:00Z",
    reason: str | None = "not-applicable",
    comment: str | None = None,
    suggestion: str = "0b9c0e0e-5d7e-4a59-9d55-2f2b8a3c1a11",
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


def libpq_dsn(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def reset_postgres(sqlalchemy_url: str) -> None:
    """Drop every table (and Alembic's version) so each test starts from an empty database."""
    names = [table.name for table in metadata.sorted_tables] + ["alembic_version"]
    with psycopg.connect(libpq_dsn(sqlalchemy_url), autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        for name in names:
            conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
