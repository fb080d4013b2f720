"""Retention: delete audit records older than AUDIT_RETENTION_DAYS (feedback is kept)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete

from cds_service.persistence.db import write_transaction
from cds_service.persistence.models import HookCall, IssuedCard


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    hook_calls: int
    cards: int


def purge_audit(engine: Engine, days: int, *, now: datetime | None = None) -> PurgeResult:
    """Delete hook calls (and their issued cards) that started more than `days` days ago."""
    if days < 1:
        raise ValueError("retention must be at least 1 day")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    with write_transaction(engine) as conn:
        cards = conn.execute(delete(IssuedCard).where(IssuedCard.c.issued_at < cutoff)).rowcount
        calls = conn.execute(delete(HookCall).where(HookCall.c.started_at < cutoff)).rowcount
    return PurgeResult(cutoff=cutoff, hook_calls=calls, cards=cards)
