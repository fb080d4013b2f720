"""Snooze from feedback: problems a clinician overrode with a reason, per patient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, bindparam, select

from cds_service.persistence.db import PreparedRead
from cds_service.persistence.models import Feedback, HookCall, IssuedCard, UTCDateTime

_JOIN = Feedback.join(
    IssuedCard,
    and_(
        IssuedCard.c.card_uuid == Feedback.c.card_uuid,
        IssuedCard.c.service_id == Feedback.c.service_id,
    ),
).join(HookCall, HookCall.c.id == IssuedCard.c.hook_call_id)


# Built once: constructing the statement cost more CPU than running it (on every chart open).
_OVERRIDDEN = PreparedRead(
    select(IssuedCard.c.recommendation_id, IssuedCard.c.problem)
    .select_from(_JOIN)
    .where(
        HookCall.c.patient_hash == bindparam("patient_hash"),
        Feedback.c.outcome == "overridden",
        Feedback.c.reason_code.is_not(None),
        Feedback.c.outcome_timestamp >= bindparam("since", type_=UTCDateTime()),
        IssuedCard.c.recommendation_id.is_not(None),
        IssuedCard.c.problem.is_not(None),
    )
    .distinct()
)


def overridden_problems(
    engine: Engine, patient_hash: str, days: float, now: datetime | None = None
) -> frozenset[tuple[str, str]]:
    """(recommendation id, problem) of cards issued for this patient (by its keyed hash) and
    overridden with a reason code within the last `days` days."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    rows = _OVERRIDDEN.rows(engine, {"patient_hash": patient_hash, "since": since})
    return frozenset((str(rec), str(problem)) for rec, problem in rows)
