"""Snooze from feedback: problems a clinician overrode with a reason, per patient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, select

from cds_service.persistence.models import Feedback, HookCall, IssuedCard

_JOIN = Feedback.join(
    IssuedCard,
    and_(
        IssuedCard.c.card_uuid == Feedback.c.card_uuid,
        IssuedCard.c.service_id == Feedback.c.service_id,
    ),
).join(HookCall, HookCall.c.id == IssuedCard.c.hook_call_id)


def overridden_problems(
    engine: Engine, patient_hash: str, days: float, now: datetime | None = None
) -> frozenset[tuple[str, str]]:
    """(recommendation id, problem) of cards issued for this patient (by its keyed hash) and
    overridden with a reason code within the last `days` days."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    query = (
        select(IssuedCard.c.recommendation_id, IssuedCard.c.problem)
        .select_from(_JOIN)
        .where(
            HookCall.c.patient_hash == patient_hash,
            Feedback.c.outcome == "overridden",
            Feedback.c.reason_code.is_not(None),
            Feedback.c.outcome_timestamp >= since,
            IssuedCard.c.recommendation_id.is_not(None),
            IssuedCard.c.problem.is_not(None),
        )
        .distinct()
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return frozenset((str(rec), str(problem)) for rec, problem in rows)
