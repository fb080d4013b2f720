"""A fixture patient as a tester sees it: a one-line summary and the CK / weight trends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cds_service.fhir.scenarios import Scenario, build_request
from cds_service.model.registry import Registry
from fhir_mappings import map_patient_state
from fhir_mappings.domain import Measurement, PatientState, Series

# Drug classes a reviewer of this guideline looks for first.
KEY_CLASSES = (
    "glucocorticoid",
    "methotrexate",
    "mycophenolate",
    "ivig",
    "rituximab",
    "cyclophosphamide",
    "jak_inhibitor",
    "benzodiazepine",
    "muscle_relaxant",
    "nsaid",
)


@dataclass(frozen=True)
class PatientCase:
    """One scenario's patient: identity, summary facts, trends and the prefetch to send."""

    scenario: str
    service_id: str
    patient_id: str
    name: str
    demographics: str
    conditions: list[str]
    medications: list[str]
    latest: dict[str, str]
    trends: dict[str, Any]
    prefetch: dict[str, Any] = field(repr=False)
    expected: list[str] | None = None  # golden cards, "IS-1 (info)"; None: no expected.json

    @property
    def summary(self) -> str:
        """The one-line clinical summary of the patient list."""
        parts = [self.demographics] if self.demographics else []
        parts.append(", ".join(self.conditions) or "no active condition on record")
        if self.medications:
            parts.append("on " + ", ".join(self.medications))
        parts.extend(f"{label} {value}" for label, value in self.latest.items())
        return " · ".join(parts)


def _patient_name(resources: list[dict[str, Any]]) -> str:
    for resource in resources:
        if resource.get("resourceType") != "Patient":
            continue
        for name in resource.get("name") or []:
            if isinstance(name, dict):
                given = " ".join(str(g) for g in name.get("given") or [])
                text = name.get("text") or f"{given} {name.get('family') or ''}".strip()
                if text:
                    return str(text)
    return ""


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "date unknown"
    days = (now - moment).days
    return "today" if days <= 0 else f"{days} d ago"


def _latest(series: Series | None, now: datetime) -> str | None:
    item = series.latest if series else None
    if item is None:
        return None
    unit = f" {item.unit}" if item.unit else ""
    return f"{_fmt(item.value)}{unit} ({_when(item.effective, now)})"


def _point(item: Measurement) -> dict[str, Any] | None:
    if item.value is None or item.effective is None:
        return None
    point: dict[str, Any] = {"t": item.effective.isoformat(), "v": item.value, "unit": item.unit}
    if item.reference_range and item.reference_range.high is not None:
        point["uln"] = item.reference_range.high
    return point


def _trend(series: Series | None) -> list[dict[str, Any]]:
    items = series.items if series else ()
    return [p for p in (_point(item) for item in items) if p is not None]


def _medications(state: PatientState) -> list[str]:
    active = state.active_medications()
    keyed = [m for m in active if m.classes & set(KEY_CLASSES)]
    return [m.name for m in (keyed or list(active))][:4]


def _demographics(state: PatientState) -> str:
    patient = state.patient
    if patient is None:
        return ""
    age = f"{patient.age_years} y" if patient.age_years is not None else ""
    return " ".join(part for part in (age, patient.sex or "") if part)


def build_case(scenario: Scenario, registry: Registry, now: datetime) -> PatientCase:
    """Map the scenario's FHIR data the way the service does, then summarise it."""
    # One prefetch set serves every service (guideline.needs): the console sends it to both.
    prefetch = build_request(scenario, registry).get("prefetch") or {}
    data = {k: v for k, v in prefetch.items() if v is not None}
    state = map_patient_state(data, now=now, unavailable={})
    latest = {
        label: text
        for label, text in (
            ("weight", _latest(state.series.get("weight"), now)),
            ("CK", _latest(state.series.get("ck"), now)),
        )
        if text
    }
    return PatientCase(
        scenario=scenario.name,
        service_id=scenario.service_id,
        patient_id=scenario.patient_id,
        name=_patient_name(scenario.resources),
        demographics=_demographics(state),
        conditions=[c.text or _coding_display(c.codings) for c in state.conditions][:3],
        medications=_medications(state),
        latest=latest,
        trends={
            "ck": _trend(state.series.get("ck")),
            "weight": _trend(state.series.get("weight")),
        },
        prefetch=prefetch,
        expected=_expected(scenario),
    )


def _expected(scenario: Scenario) -> list[str] | None:
    if scenario.expected is None:
        return None
    return [
        f"{card.get('recommendationId') or 'card'} ({card.get('indicator')})"
        for card in scenario.expected
    ]


def _coding_display(codings: tuple[Any, ...]) -> str:
    for coding in codings:
        if coding.display:
            return str(coding.display)
    return "condition (no text)"
