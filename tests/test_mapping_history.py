"""MedicationAdministration and MedicationStatement are read as treatment history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fhir_mappings import map_patient_state
from fhir_mappings.domain import JAK_INHIBITOR, RITUXIMAB
from fhir_mappings.medications import single_administration
from fhir_mappings.shapes import MedicationOrder, convert
from tests.mapping_builders import NOW, RXNORM, bundle

RITUXIMAB_CONCEPT = {"coding": [{"system": RXNORM, "code": "121191"}], "text": "Rituxan"}


def administration(status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "id": "adm1",
        "status": status,
        "medicationCodeableConcept": RITUXIMAB_CONCEPT,
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-05-01T09:00:00Z",
        **extra,
    }


def statement(status: str = "active", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": "st1",
        "status": status,
        "medicationCodeableConcept": {"text": "Xeljanz 5 mg tablets"},
        "subject": {"reference": "Patient/p1"},
        "effectivePeriod": {"start": "2026-05-15T00:00:00Z"},
        **extra,
    }


def test_an_administration_is_history_with_its_date() -> None:
    state = map_patient_state({"administrations": bundle(administration())}, now=NOW)
    [m] = state.medications
    assert m.source == "MedicationAdministration" and m.reference == "MedicationAdministration/adm1"
    assert RITUXIMAB in m.classes and m.status == "completed"
    assert m.last_date is not None and m.last_date.date().isoformat() == "2026-05-01"
    assert state.active_medications() == ()  # given once: never "active"


def test_an_active_statement_is_an_active_medication_with_time_on_it() -> None:
    state = map_patient_state({"statements": bundle(statement())}, now=NOW)
    [m] = state.active_medications()
    assert m.source == "MedicationStatement" and JAK_INHIBITOR in m.classes  # classified by name
    assert m.course is not None and m.course.elapsed_days == pytest.approx(30.5)


def test_the_remembered_prefetch_brings_a_statement_up_to_now() -> None:
    prefetch = {"statements": bundle(statement())}
    map_patient_state(prefetch, now=NOW)
    later = map_patient_state(prefetch, now=NOW + timedelta(days=10))
    [m] = later.active_medications()
    assert m.course is not None and m.course.elapsed_days == pytest.approx(40.5)


@pytest.mark.parametrize(
    "resource",
    [
        administration("not-done"),
        administration("entered-in-error"),
        statement("not-taken"),
        statement("entered-in-error"),
    ],
)
def test_not_given_is_not_history(resource: dict[str, Any]) -> None:
    state = map_patient_state({"history": bundle(resource)}, now=NOW)
    assert state.medications == ()
    assert any("ignored: status" in i.reason for i in state.issues)


def test_an_invalid_administration_is_reported_not_used() -> None:
    state = map_patient_state({"administrations": bundle(administration(status=7))}, now=NOW)
    assert state.medications == () and state.issues


@pytest.mark.parametrize(
    ("timing", "single"),
    [
        ({"repeat": {"count": 1}}, True),
        ({"code": {"text": "once"}}, True),
        ({"code": {"coding": [{"code": "STAT"}]}}, True),
        ({"event": ["2026-06-14T08:00:00Z"]}, True),
        ({"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}}, False),
        ({"repeat": {"count": 1, "countMax": 3}}, False),
        ({}, False),
    ],
)
def test_single_administration(timing: dict[str, Any], single: bool) -> None:
    order = convert({"dosageInstruction": [{"timing": timing}]}, MedicationOrder)
    assert single_administration(order) is single
