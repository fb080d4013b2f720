"""Domain objects for the guideline rule tests, built directly (no FHIR mapping involved)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_mappings.domain import (
    Allergy,
    Condition,
    Course,
    Dose,
    Measurement,
    Medication,
    OrderContext,
    Patient,
    PatientState,
    ReferenceRange,
    Series,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PATIENT_ID = "p1"

CLASSES = {
    "prednisone": {"glucocorticoid"},
    "methylprednisolone": {"glucocorticoid"},
    "hydrocortisone": {"glucocorticoid"},
    "dexamethasone": {"glucocorticoid"},
    "methotrexate": {"methotrexate"},
    "mycophenolate mofetil": {"mycophenolate"},
    "diazepam": {"benzodiazepine"},
    "lorazepam": {"benzodiazepine"},
    "cyclobenzaprine": {"muscle_relaxant"},
    "methocarbamol": {"muscle_relaxant"},
    "naproxen": {"nsaid"},
    "ibuprofen": {"nsaid"},
    "tofacitinib": {"jak_inhibitor"},
    "rituximab": {"rituximab"},
    "immune globulin": {"ivig"},
    "cyclophosphamide": {"cyclophosphamide"},
    "midazolam": {"benzodiazepine"},
    "acetaminophen": set(),
}


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def condition(
    category: str, rid: str | None = None, severity: str | None = None, status: str = "active"
) -> Condition:
    cats = {category}
    if category in ("dermatomyositis", "polymyositis"):
        cats.add("myopathy")
    return Condition(
        resource_id=rid or f"Condition/{category}",
        codings=(),
        text=category,
        categories=frozenset(cats),
        clinical_status=status,
        severity=severity,
    )


def dose(
    mg: float | None = None,
    per_day: float | None = 1,
    interval_days: float | None = None,
    route: str | None = "oral",
) -> Dose:
    """mg per administration; per_day administrations, or interval_days between them."""
    if interval_days is not None:
        per_day = 1 / interval_days
    mg_day = mg * per_day if mg is not None and per_day is not None else None
    return Dose(
        mg_per_administration=mg,
        administrations_per_day=per_day,
        mg_per_day=mg_day,
        mg_per_week=mg_day * 7 if mg_day is not None else None,
        route=route,
        interval_days=interval_days
        if interval_days is not None
        else (1 / per_day if per_day else None),
    )


def med(
    ingredient: str,
    rid: str = "m1",
    *,
    draft: bool = False,
    status: str | None = None,
    dose_: Dose | None = None,
    days: float | None = None,
    source: str | None = None,
    authored_days_ago: float = 0,
    status_reason: str | None = None,
) -> Medication:
    return Medication(
        resource_id=rid,
        reference=f"MedicationRequest/{rid}",
        name=f"{ingredient.capitalize()} product",
        codings=(),
        ingredients=frozenset({ingredient}),
        classes=frozenset(CLASSES[ingredient]),
        matched_by=(f"name:{ingredient}",),
        status=status or ("draft" if draft else "active"),
        intent="proposal" if draft else "order",
        authored_on=ago(authored_days_ago),
        dose=dose_,
        course=Course(days, source or "expectedSupplyDuration") if days is not None else None,
        status_reason=status_reason,
        is_draft=draft,
    )


def meas(
    kind: str,
    value: float | None,
    days_ago: float,
    unit: str = "U/L",
    high: float | None = None,
    rid: str | None = None,
    text: str | None = None,
) -> Measurement:
    return Measurement(
        kind=kind,
        value=value,
        unit=unit,
        effective=ago(days_ago),
        resource_id=rid or f"Observation/{kind}-{days_ago:g}",
        reference_range=ReferenceRange(None, high, unit) if high is not None else None,
        text=text,
    )


def state(
    conditions: tuple[Condition, ...] = (),
    medications: tuple[Medication, ...] = (),
    measurements: tuple[Measurement, ...] = (),
    allergies: tuple[Allergy, ...] = (),
    unavailable: tuple[str, ...] = (),
    **kw: Any,
) -> PatientState:
    by_kind: dict[str, list[Measurement]] = {}
    for m in sorted(measurements, key=lambda m: (m.effective or NOW).replace(tzinfo=UTC)):
        by_kind.setdefault(m.kind, []).append(m)
    return PatientState(
        patient=Patient(PATIENT_ID, None, 50, "female"),
        series={k: Series(k, tuple(v)) for k, v in by_kind.items()},
        conditions=conditions,
        allergies=allergies,
        medications=medications,
        unavailable=unavailable,
        **kw,
    )


def orders(*drafts: Medication, selected: tuple[str, ...] | None = None) -> OrderContext:
    refs = selected if selected is not None else tuple(d.reference or "" for d in drafts)
    return OrderContext(drafts=drafts, selections=frozenset(refs))


def allergy(ingredient: str, rid: str = "AllergyIntolerance/a1") -> Allergy:
    return Allergy(
        rid,
        (),
        ingredient,
        frozenset({ingredient}),
        frozenset(CLASSES[ingredient]),
        category="intolerance",
        clinical_status="active",
    )


def draft_resource(rid: str, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "medicationCodeableConcept": {"text": "drug"},
    }
    resource.update(extra)
    return resource
