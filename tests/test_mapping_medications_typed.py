"""MedicationRequests typed in one pass (medications.typed_requests) map as read one by one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from benchmarks import synth
from fhir_mappings.domain import PatientState
from fhir_mappings.medications import typed_requests
from tests.mapping_builders import both_ways, change_lists, json_values, mutated, searchset

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REQUESTS = synth.resources_by_key(40, NOW - timedelta(days=2))["medications"]


def _both(value: dict[str, Any]) -> tuple[PatientState, PatientState, bool]:
    """(mapped from the request's bytes, mapped from decoded JSON, read in one pass)."""
    return both_ways("medications", value, typed_requests, NOW)


def test_a_bundle_of_valid_requests_is_read_typed_in_one_pass() -> None:
    from_bytes, decoded, one_pass = _both(searchset(*REQUESTS))
    assert one_pass
    assert from_bytes == decoded
    assert len(from_bytes.medications) == len(REQUESTS) and not from_bytes.issues
    prednisone = from_bytes.medications[0]
    assert prednisone.classes == {"glucocorticoid"} and prednisone.dose is not None
    assert prednisone.dose.mg_per_day == 40.0


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """The first request with `value` at `path` (deleted when value is ...)."""
    res = copy.deepcopy(REQUESTS[0])
    *parents, last = path
    at: Any = res
    for step in parents:
        at = at[step]
    if value is ...:
        del at[last]
    else:
        at[last] = value
    return res


@pytest.mark.parametrize(
    ("changed", "reported"),
    [
        (_with(("status",), "entered-in-error"), "ignored: status entered-in-error"),
        (_with(("doNotPerform",), True), "ignored: doNotPerform"),
    ],
)
def test_requests_that_are_not_given_are_reported_in_one_pass(
    changed: dict[str, Any], reported: str
) -> None:
    from_bytes, decoded, one_pass = _both(searchset(*REQUESTS[1:], changed))
    assert one_pass
    assert from_bytes == decoded
    assert [i.reason[: len(reported)] for i in from_bytes.issues] == [reported]


@pytest.mark.parametrize(
    ("changed", "reported"),
    [
        # repaired, then mapped: R5 medication, STU3 dose, a lone dosage object
        (_with(("medication",), {"concept": {"text": "x"}}), None),
        (_with(("dosageInstruction", 0, "doseQuantity"), {"value": 2, "unit": "mg"}), None),
        (_with(("dosageInstruction",), {"text": "1 daily"}), None),
        # a null second medication[x]: invalid
        (_with(("medicationReference",), None), "invalid R4: only one of"),
        (_with(("status",), "finished"), "invalid R4: status"),
        ({"resourceType": "Medication", "id": "m1"}, None),
    ],
)
def test_a_bundle_with_anything_else_is_read_entry_by_entry(
    changed: dict[str, Any], reported: str | None
) -> None:
    """One pass needs every entry valid and needing no repair; else the per-resource path."""
    from_bytes, decoded, one_pass = _both(searchset(*REQUESTS[1:], changed))
    assert not one_pass
    assert from_bytes == decoded
    reasons = [i.reason for i in from_bytes.issues]
    if reported is None:
        assert not reasons
    else:
        assert len(reasons) == 1 and reasons[0].startswith(reported), reasons


def test_stu3_dose_elements_are_moved_as_before() -> None:
    changed = _with(("dosageInstruction", 0, "doseAndRate"), ...)
    changed["dosageInstruction"][0]["doseQuantity"] = {"value": 20, "unit": "mg"}
    from_bytes, _, one_pass = _both(searchset(changed))
    assert not one_pass
    dose = from_bytes.medications[0].dose
    assert dose is not None and dose.mg_per_administration == 20.0


PATHS = [
    ("status",),
    ("intent",),
    ("id",),
    ("authoredOn",),
    ("doNotPerform",),
    ("medication",),
    ("medicationReference",),
    ("contained",),
    ("statusReason",),
    ("medicationCodeableConcept",),
    ("medicationCodeableConcept", "text"),
    ("medicationCodeableConcept", "coding"),
    ("medicationCodeableConcept", "coding", 0, "code"),
    ("medicationCodeableConcept", "coding", 0, "system"),
    ("dosageInstruction",),
    ("dosageInstruction", 0, "text"),
    ("dosageInstruction", 0, "doseQuantity"),
    ("dosageInstruction", 0, "doseAndRate"),
    ("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity"),
    ("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity", "value"),
    ("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity", "code"),
    ("dosageInstruction", 0, "route"),
    ("dosageInstruction", 0, "timing"),
    ("dosageInstruction", 0, "timing", "repeat", "frequency"),
    ("dosageInstruction", 0, "timing", "repeat", "periodUnit"),
    ("dosageInstruction", 0, "timing", "code"),
    ("dosageInstruction", 0, "asNeededBoolean"),
    ("dispenseRequest", "quantity"),
    ("dispenseRequest", "expectedSupplyDuration", "value"),
    ("dispenseRequest", "numberOfRepeatsAllowed"),
    ("dispenseRequest", "validityPeriod", "start"),
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 400)
    | st.floats(-1e3, 1e6, allow_nan=False)
    | st.sampled_from(["", " ", "a  b", "d", "mg", "{tbl}", "TID", "once", "#m1", "2026-02-30"])
    | st.text(max_size=8)
)
VALUES = json_values(_SCALARS, ["value", "unit", "code", "system", "text", "coding", "reference"])


@settings(max_examples=300, deadline=None)
@given(
    changes=change_lists(PATHS, VALUES),
    which=st.integers(0, len(REQUESTS) - 1),
)
def test_one_pass_and_entry_by_entry_map_the_same(
    changes: list[tuple[tuple[Any, ...], Any]], which: int
) -> None:
    """Whatever a request holds, typed in one pass or read one by one: the same state."""
    res = mutated(REQUESTS[which], changes)
    from_bytes, decoded, one_pass = _both(searchset(*REQUESTS[:3], res))
    event(f"one pass: {one_pass}")
    assert from_bytes == decoded
