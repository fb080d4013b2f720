"""Property-based: mapping arbitrary JSON never raises (issue 3)."""

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
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
