"""Property-based: mapping arbitrary JSON never raises."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings import map_order_context, map_patient_state
from fhir_mappings.domain import OrderContext, PatientState
from tests.mapping_builders import NOW

KEYS = st.sampled_from(
    [
        "resourceType",
        "id",
        "status",
        "code",
        "coding",
        "system",
        "code",
        "valueQuantity",
        "value",
        "unit",
        "valueString",
        "component",
        "effectiveDateTime",
        "entry",
        "resource",
        "fullUrl",
        "medicationCodeableConcept",
        "medicationReference",
        "reference",
        "contained",
        "text",
        "dosageInstruction",
        "doseAndRate",
        "doseQuantity",
        "timing",
        "repeat",
        "frequency",
        "period",
        "periodUnit",
        "dispenseRequest",
        "clinicalStatus",
        "birthDate",
        "referenceRange",
        "high",
        "medication",
        "concept",
        "authoredOn",
        "dayOfWeek",
        "when",
    ]
)
TYPES = st.sampled_from(
    [
        "Observation",
        "MedicationRequest",
        "Medication",
        "Condition",
        "AllergyIntolerance",
        "Patient",
        "ServiceRequest",
        "Bundle",
        "OperationOutcome",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "http://loinc.org",
            "2157-6",
            "U/L",
            "mg",
            "TAB",
            "wk",
            "d",
            "#m",
            "2026-01-01",
            "<5",
            "active",
            "draft",
            "LORazepam",
            "\u200b",
            "1e308",
        ]
    ),
    TYPES,
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=5)), children, max_size=6),
        st.builds(
            lambda t, d: {"resourceType": t, **d},
            TYPES,
            st.dictionaries(KEYS, children, max_size=6),
        ),
    ),
    max_leaves=30,
)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(st.dictionaries(st.text(max_size=8), JSON, max_size=4))
def test_map_patient_state_never_raises(prefetch: dict[str, Any]) -> None:
    state = map_patient_state(prefetch, now=NOW)
    # The per-resource safety net must not be what saved us: no mapping bug was swallowed.
    assert not [i for i in state.issues if i.reason.startswith("not mapped")]


@SETTINGS
@given(JSON, st.lists(st.one_of(st.text(max_size=20), st.integers()), max_size=3))
def test_map_order_context_never_raises(draft_orders: Any, selections: list[Any]) -> None:
    ctx = map_order_context(draft_orders, selections, now=NOW)
    assert isinstance(ctx, OrderContext)
    assert not [i for i in ctx.issues if i.reason.startswith("not mapped")]


@SETTINGS
@given(JSON)
def test_any_value_in_a_bundle_entry_never_raises(resource: Any) -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": resource}, resource]}
    state = map_patient_state({"k": bundle, "j": resource}, now=NOW, unavailable={"x": "y"})
    assert state.unavailable == ("x",)
    assert not [i for i in state.issues if i.reason.startswith("not mapped")]


@SETTINGS
@given(st.one_of(JSON, st.none()))
def test_non_mapping_prefetch_never_raises(prefetch: Any) -> None:
    assert isinstance(map_patient_state(prefetch, now=NOW), PatientState)


# Structured inputs: valid-looking R4 resources with arbitrary values reach the mapping code
# itself (the generic strategy above is mostly rejected by validation first).
CODES = st.sampled_from(
    ["2157-6", "10839-9", "29463-7", "2345-7", "4548-4", "85354-9", "11565-9", "11524-6", "8867-4"]
)
UNITS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "U/L",
            "IU/L",
            "ukat/L",
            "kg",
            "[lb_av]",
            "lbs",
            "mmol/L",
            "mg/dL",
            "ng/mL",
            "%",
            "mmol/mol",
            "mm[Hg]",
            "TAB",
            "mL",
            "mg",
            "g",
            "d",
            "wk",
        ]
    ),
    st.text(max_size=6),
)
NUMBERS = st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e300, 1e300, allow_nan=False))
DATES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2026",
            "2026-02",
            "2026-02-30",
            "2026-06-01",
            "2026-06-01T08:00:00Z",
            "2026-06-01T08:00:00.5+14:00",
            "garbage",
        ]
    ),
)


def _quantity(value: Any, unit: Any) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if unit is not None:
        q["unit"] = unit
    return q


OBSERVATIONS = st.builds(
    lambda code, value, unit, text, when, status: {
        "resourceType": "Observation",
        "id": "o",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        **({"effectiveDateTime": when} if when else {}),
        **(
            {"valueString": text} if text is not None else {"valueQuantity": _quantity(value, unit)}
        ),
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": _quantity(value, unit),
            }
        ],
        "referenceRange": [{"high": _quantity(value, unit)}],
    },
    CODES,
    NUMBERS,
    UNITS,
    st.one_of(st.none(), st.text(max_size=8)),
    DATES,
    st.sampled_from(["final", "preliminary", "amended", "cancelled", "registered"]),
)
REPEATS = st.fixed_dictionaries(
    {},
    optional={
        "frequency": st.integers(1, 10),
        "frequencyMax": st.integers(1, 10),
        "period": st.floats(0, 100, allow_nan=False),
        "periodMax": st.floats(0, 100, allow_nan=False),
        "periodUnit": st.sampled_from(["s", "min", "h", "d", "wk", "mo", "a"]),
        "dayOfWeek": st.lists(st.sampled_from(["mon", "tue", "sun"]), max_size=3),
        "when": st.lists(st.sampled_from(["MORN", "EVE", "HS"]), max_size=3),
        "count": st.integers(1, 100),
        "boundsDuration": st.builds(_quantity, st.floats(0, 1e6, allow_nan=False), UNITS),
    },
)
REQUESTS = st.builds(
    lambda text, value, unit, rep, code, supply, quantity, repeats, status: {
        "resourceType": "MedicationRequest",
        "id": "m",
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2026-01-01",
        "medicationCodeableConcept": {"text": text},
        "dosageInstruction": [
            {
                "timing": {"repeat": rep, "code": {"coding": [{"code": code}]}},
                "doseAndRate": [{"doseQuantity": _quantity(value, unit)}],
            }
        ],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": repeats,
            "expectedSupplyDuration": _quantity(supply, unit),
            "quantity": _quantity(quantity, unit),
        },
    },
    st.sampled_from(
        [
            "predniSONE 5 MG Oral Tablet",
            "Methotrexate 2.5 MG Oral Tablet",
            "midazolam 1 MG/ML",
            "LORazepam",
            "x",
        ]
    ),
    NUMBERS,
    UNITS,
    REPEATS,
    st.sampled_from(["QD", "BID", "WK", "XX", "QOD"]),
    st.floats(0, 1e6, allow_nan=False),
    st.floats(0, 1e6, allow_nan=False),
    st.integers(0, 20),
    st.sampled_from(["active", "draft", "stopped", "on-hold"]),
)


@SETTINGS
@given(st.lists(st.one_of(OBSERVATIONS, REQUESTS), max_size=4))
def test_structured_resources_never_trip_the_safety_net(resources: list[dict[str, Any]]) -> None:
    state = map_patient_state(
        {"k": {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}}, now=NOW
    )
    assert not [i for i in state.issues if i.reason.startswith("not mapped")], state.issues
    for series in state.series.values():
        for m in series.items:
            assert m.value is None or m.unit is not None
    ctx = map_order_context({"entry": [{"resource": r} for r in resources]}, [], now=NOW)
    assert not [i for i in ctx.issues if i.reason.startswith("not mapped")], ctx.issues


def test_a_contained_resource_without_type_is_invalid_not_a_crash() -> None:
    # fhir_core raised KeyError('R4.Type') on this shape (found by hypothesis).
    req = {"resourceType": "MedicationRequest", "id": "m", "contained": {"resourceType": ""}}
    state = map_patient_state({"k": req}, now=NOW)
    assert [i.resource for i in state.issues] == ["MedicationRequest/m"]
    assert state.issues[0].reason.startswith("invalid R4")
