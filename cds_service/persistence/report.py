"""Governance report: per recommendation id and period, fired, silent, accepted, overridden."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, String, and_, case, func, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from cds_service.persistence.models import Feedback, HookCall, IssuedCard

PERIODS = ("day", "week", "month")
Column = ColumnElement[Any]
TOP_REASONS = 5


class period_start(FunctionElement[str]):
    """First day (YYYY-MM-DD, UTC) of the day, ISO week (Monday) or month holding a time."""

    type = String()
    inherit_cache = True
    name = "period_start"

    def __init__(self, period: str, column: Column) -> None:
        if period not in PERIODS:
            raise ValueError(f"period must be one of {PERIODS}")
        self.period = period
        super().__init__(column)


@compiles(period_start, "sqlite")
def _period_sqlite(element: period_start, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(next(iter(element.clauses)), **kw)
    if element.period == "day":
        return f"date({column})"
    if element.period == "week":
        # 'weekday 0' moves forward to Sunday (or stays); six days back is that week's Monday.
        return f"date({column}, 'weekday 0', '-6 days')"
    return f"strftime('%Y-%m-01', {column})"


@compiles(period_start, "postgresql")
def _period_postgresql(element: period_start, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(next(iter(element.clauses)), **kw)
    return f"to_char(date_trunc('{element.period}', {column} AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"


@dataclass
class ReasonCount:
    system: str | None
    code: str | None
    display: str | None
    count: int


@dataclass
class ReportRow:
    """One recommendation in one period: cards shown and what clinicians did with them.

    `shown` counts cards returned (fired); `would_have_fired` cards of a recommendation in
    silent rollout; `patients*` distinct patients (by keyed hash) concerned.
    """

    recommendation_id: str | None
    period_start: str
    shown: int = 0
    would_have_fired: int = 0
    patients: int = 0
    patients_would_have_fired: int = 0
    accepted: int = 0
    overridden: int = 0
    top_override_reasons: list[ReasonCount] = field(default_factory=list)

    @property
    def override_rate(self) -> float | None:
        """Overridden / (accepted + overridden): of the cards answered, the share overridden."""
        answered = self.accepted + self.overridden
        return round(self.overridden / answered, 4) if answered else None

    def to_json(self) -> dict[str, Any]:
        """Every key always present (null when unknown): the console and dashboards read it."""
        data = asdict(self)
        data["override_rate"] = self.override_rate
        return data


@dataclass(frozen=True)
class ReportFilter:
    period: str = "week"
    service_id: str | None = None
    since: datetime | None = None  # inclusive, on the time the card was shown
    until: datetime | None = None  # exclusive


def override_report(engine: Engine, flt: ReportFilter) -> dict[str, Any]:
    """Shown/accepted/overridden counts, override rate and top reasons, newest period first."""
    bucket = period_start(flt.period, IssuedCard.c.issued_at).label("period")
    where = _card_filter(flt)
    rows: dict[tuple[str | None, str], ReportRow] = {}

    def row(rec_id: str | None, period: str) -> ReportRow:
        return rows.setdefault((rec_id, period), ReportRow(rec_id, period))

    shown_q = (
        select(
            IssuedCard.c.recommendation_id,
            bucket,
            IssuedCard.c.mode,
            func.count(),
            func.count(func.distinct(HookCall.c.patient_hash)),
        )
        .join(HookCall, HookCall.c.id == IssuedCard.c.hook_call_id)
        .where(where)
        .group_by(IssuedCard.c.recommendation_id, bucket, IssuedCard.c.mode)
    )
    # A card counts once per outcome even when the client sent several feedback items.
    outcome_q = (
        select(
            IssuedCard.c.recommendation_id,
            bucket,
            func.count(
                func.distinct(_when(Feedback.c.outcome == "accepted", Feedback.c.card_uuid))
            ),
            func.count(
                func.distinct(_when(Feedback.c.outcome == "overridden", Feedback.c.card_uuid))
            ),
        )
        .join(Feedback, _feedback_join())
        .where(where)
        .group_by(IssuedCard.c.recommendation_id, bucket)
    )
    reason_q = (
        select(
            IssuedCard.c.recommendation_id,
            bucket,
            Feedback.c.reason_system,
            Feedback.c.reason_code,
            func.max(Feedback.c.reason_display),
            func.count(func.distinct(Feedback.c.card_uuid)),
        )
        .join(Feedback, _feedback_join())
        .where(where, Feedback.c.outcome == "overridden")
        .group_by(
            IssuedCard.c.recommendation_id, bucket, Feedback.c.reason_system, Feedback.c.reason_code
        )
    )
    # Known-ness by join at report time: the feedback and the audit record of its card may
    # commit in either order, from different instances, and neither sees the other's rows.
    issued = select(IssuedCard.c.id).where(_feedback_join())
    unknown_q = select(func.count()).select_from(Feedback).where(~issued.exists())
    if flt.service_id:
        unknown_q = unknown_q.where(Feedback.c.service_id == flt.service_id)
    with engine.connect() as conn:
        for rec_id, period, mode, count, patients in conn.execute(shown_q):
            target = row(rec_id, period)
            if mode == "silent":
                target.would_have_fired, target.patients_would_have_fired = count, patients
            else:
                target.shown, target.patients = count, patients
        for rec_id, period, accepted, overridden in conn.execute(outcome_q):
            target = row(rec_id, period)
            target.accepted, target.overridden = accepted, overridden
        for rec_id, period, system, code, display, count in conn.execute(reason_q):
            row(rec_id, period).top_override_reasons.append(
                ReasonCount(system, code, display, count)
            )
        unknown = conn.execute(unknown_q).scalar_one()
    ordered = sorted(rows.values(), key=lambda r: (r.period_start, r.recommendation_id or ""))
    ordered.sort(key=lambda r: r.period_start, reverse=True)
    for item in ordered:
        item.top_override_reasons = _top(item.top_override_reasons)
    return {
        "period": flt.period,
        "service": flt.service_id,
        "from": flt.since.isoformat() if flt.since else None,
        "until": flt.until.isoformat() if flt.until else None,  # exclusive
        "rows": [item.to_json() for item in ordered],
        "feedbackForUnknownCards": unknown,
    }


def _when(condition: ColumnElement[bool], value: Column) -> ColumnElement[Any]:
    return case((condition, value))


def _feedback_join() -> ColumnElement[bool]:
    return and_(
        Feedback.c.card_uuid == IssuedCard.c.card_uuid,
        Feedback.c.service_id == IssuedCard.c.service_id,
    )


def _card_filter(flt: ReportFilter) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if flt.service_id:
        clauses.append(IssuedCard.c.service_id == flt.service_id)
    if flt.since:
        clauses.append(IssuedCard.c.issued_at >= flt.since)
    if flt.until:
        clauses.append(IssuedCard.c.issued_at < flt.until)
    return and_(true(), *clauses)


def _top(reasons: list[ReasonCount]) -> list[ReasonCount]:
    merged: dict[tuple[str | None, str | None], ReasonCount] = defaultdict(
        lambda: ReasonCount(None, None, None, 0)
    )
    for reason in reasons:
        slot = merged[(reason.system, reason.code)]
        slot.system, slot.code, slot.display = reason.system, reason.code, reason.display
        slot.count += reason.count
    ranked = sorted(merged.values(), key=lambda r: (-r.count, r.code or "", r.system or ""))
    return ranked[:TOP_REASONS]
