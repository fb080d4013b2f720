"""Snooze from feedback: problems a clinician overrode with a reason, per patient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Select, and_, bindparam, func, select, union

from cds_service.persistence.db import PreparedRead
from cds_service.persistence.models import Feedback, HookCall, IssuedCard, UTCDateTime

_SAME_CARD = and_(
    IssuedCard.c.card_uuid == Feedback.c.card_uuid,
    IssuedCard.c.service_id == Feedback.c.service_id,
)
_CARDS = Feedback.join(IssuedCard, _SAME_CARD)

# The patient of a card, read per row: a join here would let a planner start from all the
# patient's calls again (PostgreSQL does on a new database).
_CARD_PATIENT = (
    select(HookCall.c.patient_hash)
    .where(HookCall.c.id == IssuedCard.c.hook_call_id)
    .correlate(IssuedCard)
    .scalar_subquery()
)


def _overrides(*where: Any) -> Select[Any]:
    """(recommendation id, problem) of cards overridden with a reason since `since`."""
    return (
        select(IssuedCard.c.recommendation_id, IssuedCard.c.problem)
        .select_from(_CARDS)
        .where(
            *where,
            Feedback.c.outcome == "overridden",
            Feedback.c.reason_code.is_not(None),
            Feedback.c.outcome_timestamp >= bindparam("since", type_=UTCDateTime()),
            IssuedCard.c.recommendation_id.is_not(None),
            IssuedCard.c.problem.is_not(None),
        )
    )


# Built once: constructing the statement cost more CPU than running it (on every chart open).
# It starts from the patient's overrides (feedback.patient_hash, indexed with the outcome and
# its time), so a chart opened thousands of times costs what a new one does. Feedback that
# arrived before its card was audited has no patient yet: found through its card's call.
_OVERRIDDEN = PreparedRead(
    union(
        _overrides(Feedback.c.patient_hash == bindparam("patient_hash")),
        _overrides(Feedback.c.patient_hash.is_(None), bindparam("patient_hash") == _CARD_PATIENT),
    )
)


def overridden_problems(
    engine: Engine, patient_hash: str, days: float, now: datetime | None = None
) -> frozenset[tuple[str, str]]:
    """(recommendation id, problem) of cards issued for this patient (by its keyed hash) and
    overridden with a reason code within the last `days` days."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    rows = _OVERRIDDEN.rows(engine, {"patient_hash": patient_hash, "since": since})
    return frozenset((str(rec), str(problem)) for rec, problem in rows)


# The patients any override within the window names (cds_service.persistence.override_index):
# its own patient, else its card's call's; an outer join keeps an override whose card is not
# audited yet, which names no one until it is.
_FEEDBACK_CALLS = Feedback.outerjoin(IssuedCard, _SAME_CARD).outerjoin(
    HookCall, HookCall.c.id == IssuedCard.c.hook_call_id
)
_OVERRIDING = PreparedRead(
    select(
        func.coalesce(Feedback.c.patient_hash, HookCall.c.patient_hash),
        IssuedCard.c.card_uuid.is_(None),
    )
    .distinct()
    .select_from(_FEEDBACK_CALLS)
    .where(
        Feedback.c.outcome == "overridden",
        Feedback.c.reason_code.is_not(None),
        Feedback.c.outcome_timestamp >= bindparam("since", type_=UTCDateTime()),
    )
)


def overriding_patients(
    engine: Engine, days: float, now: datetime | None = None
) -> frozenset[str | None]:
    """Keyed hashes of the patients overridden_problems may find within `days` (a superset);
    None among them when an override's card is not audited yet (it names no patient yet)."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    found: set[str | None] = set()
    for patient_hash, unaudited in _OVERRIDING.rows(engine, {"since": since}):
        if patient_hash is not None:
            found.add(str(patient_hash))
        elif unaudited:
            found.add(None)
        # else: a card answered without a patient, which no lookup can find
    return frozenset(found)
