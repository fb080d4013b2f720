"""Facts the rules share: scopes, therapy on record, measurements, and how to show them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from cds_service.guideline.knowledge import Knowledge
from fhir_mappings.domain import (
    GLUCOCORTICOID,
    Condition,
    Measurement,
    Medication,
    OrderContext,
    PatientState,
    Series,
)

_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
T = TypeVar("T")


@dataclass(frozen=True)
class RuleContext:
    """What every rule receives: the hook, the patient, the orders and the knowledge."""

    hook: str
    state: PatientState
    orders: OrderContext | None
    now: datetime
    patient_id: str | None
    knowledge: Knowledge
    draft_resources: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # Facts several rules ask for, derived once a call (the context and its inputs are frozen).
    _memo: dict[Any, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def remembered(self, key: Any, derive: Callable[[], T]) -> T:
        """derive(), once for this context: every rule of a call reads the same answer."""
        try:
            found: T = self._memo[key]
        except KeyError:
            found = self._memo[key] = derive()
        return found

    @property
    def ordering(self) -> bool:
        return self.hook in ("order-select", "order-sign")

    def in_scope(self, scope: str) -> bool:
        return self.remembered(("in_scope", scope), lambda: self._in_scope(scope))

    def _in_scope(self, scope: str) -> bool:
        categories = self.knowledge.scopes[scope]
        if not categories:
            return True
        return any(c.categories & categories for c in self.state.conditions if is_current(c))

    def selected(self) -> tuple[Medication, ...]:
        return self.orders.selected() if self.orders else ()

    def draft_refs(self) -> frozenset[str]:
        if not self.orders:
            return frozenset()
        return frozenset(d.reference for d in self.orders.drafts if d.reference)

    def active(self) -> tuple[Medication, ...]:
        """Active medications on record, excluding drafts the EHR also lists in prefetch."""
        return self.remembered("active", self._active)

    def _active(self) -> tuple[Medication, ...]:
        drafts = self.draft_refs()
        return tuple(
            m
            for m in self.state.active_medications()
            if not m.is_draft and (m.reference is None or m.reference not in drafts)
        )

    def active_of(self, *classes: str) -> tuple[Medication, ...]:
        return self.remembered(("active_of", classes), lambda: self._active_of(classes))

    def _active_of(self, classes: tuple[str, ...]) -> tuple[Medication, ...]:
        wanted = set(classes)
        return tuple(m for m in self.active() if m.classes & wanted)

    def unavailable(self, *keys: str) -> tuple[str, ...]:
        return tuple(k for k in keys if k in self.state.unavailable)

    def days_since(self, when: datetime | None) -> float | None:
        if when is None:
            return None
        return (aware(self.now) - aware(when)).total_seconds() / 86400.0


def running_days(ctx: RuleContext, m: Medication) -> float | None:
    """Days an active medication has run: the mapping's elapsed days, else since authoredOn."""
    if m.course and m.course.elapsed_days is not None:
        return m.course.elapsed_days
    return ctx.days_since(m.authored_on)


def is_current(c: Condition) -> bool:
    """Active (or recurring) and not refuted: only such conditions put a patient in scope."""
    return c.clinical_status in (None, "active", "recurrence", "relapse") and (
        c.verification_status not in ("refuted", "entered-in-error")
    )


def aware(when: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so comparisons never mix the two kinds."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def systemic_glucocorticoids(ctx: RuleContext) -> tuple[Medication, ...]:
    """Active systemic glucocorticoids (the class is systemic corticosteroids, ATC H02AB)."""
    return ctx.remembered(
        "systemic_glucocorticoids",
        lambda: tuple(
            m
            for m in ctx.active_of(GLUCOCORTICOID)
            if m.dose is None or m.dose.route not in ("topical", "inhaled", "ophthalmic", "nasal")
        ),
    )


@dataclass(frozen=True)
class SteroidUse:
    """A systemic glucocorticoid with its prednisone-equivalent daily dose (None: unknown)."""

    medication: Medication
    prednisone_mg_day: float | None
    why_unknown: str | None = None

    def describe(self) -> str:
        m = self.medication
        if self.prednisone_mg_day is None:
            return f"{m.name} (prednisone-equivalent dose unknown: {self.why_unknown})"
        own = m.dose.mg_per_day if m.dose else None
        if "prednisone" in m.ingredients:
            return f"{m.name}, {fmt_num(own)} mg/day"
        return (
            f"{m.name}, {fmt_num(own)} mg/day = prednisone {fmt_num(self.prednisone_mg_day)} "
            "mg/day equivalent"
        )


def prednisone_equivalent(ctx: RuleContext, m: Medication) -> SteroidUse:
    """The daily dose as prednisone mg (knowledge equivalence table); unknown is said why."""
    factors = [
        ctx.knowledge.prednisone_factor[i]
        for i in m.ingredients
        if i in ctx.knowledge.prednisone_factor
    ]
    mg_day = m.dose.mg_per_day if m.dose else None
    if mg_day is None:
        why = "; ".join(m.dose.unknown) if m.dose and m.dose.unknown else "no usable dosage"
        return SteroidUse(m, None, why)
    if len(factors) != 1:
        return SteroidUse(m, None, "no equivalence for this glucocorticoid")
    return SteroidUse(m, mg_day * factors[0])


def glucocorticoid_therapy(ctx: RuleContext) -> tuple[SteroidUse, ...]:
    """Systemic glucocorticoids counting as first-line therapy: above the site threshold.

    An unknown dose counts (a course cannot be ruled out); replacement doses and topical,
    inhaled, ophthalmic or nasal use do not.
    """

    def derive() -> tuple[SteroidUse, ...]:
        threshold = ctx.knowledge.p("glucocorticoid_therapy_mg_per_day")
        uses = (prednisone_equivalent(ctx, m) for m in systemic_glucocorticoids(ctx))
        return tuple(
            u for u in uses if u.prednisone_mg_day is None or u.prednisone_mg_day > threshold + 1e-9
        )

    return ctx.remembered("glucocorticoid_therapy", derive)


def therapy_glucocorticoids(ctx: RuleContext) -> tuple[Medication, ...]:
    """The medications of glucocorticoid_therapy (first-line glucocorticoid therapy)."""
    return tuple(u.medication for u in glucocorticoid_therapy(ctx))


def immunosuppressive_therapy(ctx: RuleContext) -> tuple[Medication, ...]:
    """Active immunosuppression: a glucocorticoid only above the site's prednisone-equivalent
    threshold (replacement doses, topical and inhaled use are not immunosuppression)."""
    others = [c for c in ctx.knowledge.kinds("immunosuppressive") if c != GLUCOCORTICOID]
    return (*therapy_glucocorticoids(ctx), *ctx.active_of(*others))


def below_therapy(ctx: RuleContext) -> tuple[SteroidUse, ...]:
    """Systemic glucocorticoids at or below the threshold (e.g. physiological replacement)."""
    therapy = {id(u.medication) for u in glucocorticoid_therapy(ctx)}
    return tuple(
        prednisone_equivalent(ctx, m) for m in systemic_glucocorticoids(ctx) if id(m) not in therapy
    )


def is_child(ctx: RuleContext) -> bool:
    """Younger than the site's adult age: the guideline's doses are adult doses."""
    patient = ctx.state.patient
    age = patient.age_years if patient else None
    return age is not None and age < ctx.knowledge.p("adult_age_years")


PAEDIATRIC_NOTE = (
    "This patient is {age} years old. The guideline's doses are adult doses: paediatric "
    "dosing is a specialist decision."
)


def paediatric_note(ctx: RuleContext) -> str:
    patient = ctx.state.patient
    return PAEDIATRIC_NOTE.format(age=patient.age_years if patient else "?")


def series(state: PatientState, kinds: Iterable[str]) -> tuple[Measurement, ...]:
    """Measurements of the given kinds, oldest first, deduplicated by resource id."""
    seen: set[str] = set()
    items: list[Measurement] = []
    for kind in kinds:
        for m in state.series.get(kind, Series(kind)).items:
            key = m.resource_id or f"{kind}:{m.effective}:{m.value}"
            if key in seen:
                continue
            seen.add(key)
            items.append(m)
    return tuple(sorted(items, key=lambda m: aware(m.effective or _EPOCH)))


def valued(items: Iterable[Measurement]) -> tuple[Measurement, ...]:
    return tuple(m for m in items if m.value is not None and m.effective is not None)


def within(items: Iterable[Measurement], now: datetime, days: float) -> tuple[Measurement, ...]:
    since = aware(now) - timedelta(days=days)
    return tuple(m for m in items if m.effective is not None and aware(m.effective) >= since)


def upper_limit(m: Measurement, default: float | None) -> tuple[float | None, str]:
    """ULN from the result's own reference range, else the site default; says which."""
    rr = m.reference_range
    if rr and rr.high is not None and rr.unit in (None, m.unit):
        return rr.high, "the result's reference range"
    if default is None:
        return None, "no reference range"
    return default, "site-policy default"


def is_high(m: Measurement) -> bool | None:
    """Above its upper limit by reference range or interpretation; None if unknowable."""
    rr = m.reference_range
    if m.value is not None and rr and rr.high is not None and rr.unit in (None, m.unit):
        if m.comparator in ("<", "<="):
            return False if m.value <= rr.high else None
        return m.value > rr.high
    if m.interpretation:
        return any(code in ("H", "HH", "HU", "A", "AA") for code in m.interpretation)
    return None


def qualified(resource_type: str, rid: str | None) -> str:
    """ "Type/id" whether or not the mapping kept the type prefix; the type alone if no id."""
    if not rid:
        return resource_type
    return rid if "/" in rid else f"{resource_type}/{rid}"


def ref(m: Measurement, label: str) -> str:
    """Provenance string for a measurement."""
    where = qualified("Observation", m.resource_id)
    return f"{where} ({label} {fmt_value(m)}, {fmt_date(m.effective)})"


def cond_ref(c: Condition) -> str:
    """Provenance string for a condition."""
    return f"{qualified('Condition', c.resource_id)} ({c.text or 'condition'})"


def med_ref(m: Medication) -> str:
    return f"{m.reference or 'MedicationRequest'} ({m.name}, {m.status or 'no status'})"


def fmt_date(when: datetime | None) -> str:
    return when.date().isoformat() if when else "undated"


def fmt_num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


UNIT_DISPLAY = {"mm[Hg]": "mmHg", "[lb_av]": "lb"}


def fmt_value(m: Measurement) -> str:
    if m.value is None:
        return m.text or "result without a value"
    comparator = m.comparator or ""
    unit = UNIT_DISPLAY.get(m.unit or "", m.unit or "")
    return f"{comparator}{fmt_num(m.value)} {unit}".strip()


def trend_table(items: Iterable[Measurement], label: str) -> str:
    """Markdown list of values with dates and the change between them."""
    lines = []
    previous: Measurement | None = None
    for m in items:
        change = ""
        if previous is not None and previous.value and m.value is not None:
            pct = (m.value - previous.value) / previous.value * 100
            change = f" ({'+' if pct >= 0 else ''}{pct:.0f} % vs previous)"
        lines.append(f"- {fmt_date(m.effective)}: {label} {fmt_value(m)}{change}")
        previous = m
    return "\n".join(lines)


def with_classes(meds: Iterable[Medication], *classes: str) -> tuple[Medication, ...]:
    return tuple(m for m in meds if m.classes & set(classes))


def with_ingredient(meds: Iterable[Medication], ingredient: str) -> tuple[Medication, ...]:
    return tuple(m for m in meds if ingredient in m.ingredients)


def short_name(m: Medication) -> str:
    """Ingredient name(s) when known (short, for summaries), else the order's own name."""
    return " + ".join(sorted(m.ingredients)) if m.ingredients else m.name


def how_matched(m: Medication) -> str:
    return ", ".join(m.matched_by) if m.matched_by else "classification"
