"""MedicationRequests: drug resolution and classification (CODES.md rules)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import map_order_context, map_patient_state
from fhir_mappings.domain import BENZODIAZEPINE, GLUCOCORTICOID, IVIG, NSAID, Medication
from tests.mapping_builders import ATC, NOW, RXNORM, bundle, med_request, rx

CASES: list[tuple[str, dict[str, Any], set[str], set[str], tuple[str, ...]]] = [
    ("rxnorm ingredient", rx("6470"), {"lorazepam"}, {BENZODIAZEPINE}, ("rxnorm-ingredient:6470",)),
    ("rxnorm product", rx("197901"), {"lorazepam"}, {BENZODIAZEPINE}, ("rxnorm-product:197901",)),
    (
        "Synthea Valium SBD",
        rx("563026", "Diazepam [Valium]"),
        {"diazepam"},
        {BENZODIAZEPINE},
        ("rxnorm-product:563026",),
    ),
    (
        "Synthea Klonopin SBD",
        rx("1153378"),
        {"clonazepam"},
        {BENZODIAZEPINE},
        ("rxnorm-product:1153378",),
    ),
    (
        "ATC substance (clonazepam N03AE01)",
        rx("N03AE01", system=ATC),
        {"clonazepam"},
        {BENZODIAZEPINE},
        ("atc:N03AE01",),
    ),
    ("ATC class prefix only", rx("N05BA99", system=ATC), set(), {BENZODIAZEPINE}, ("atc:N05BA99",)),
    (
        "tall-man text only",
        {"text": "LORazepam 0.5 mg"},
        {"lorazepam"},
        {BENZODIAZEPINE},
        ("name:lorazepam",),
    ),
    (
        "zero-width display",
        rx("999", "predni\u200bSONE 5 MG Oral Tablet"),
        {"prednisone"},
        {GLUCOCORTICOID},
        ("name:prednisone",),
    ),
    (
        "unknown code, brand in display",
        rx("12345", "Valium 5 MG Oral Tablet"),
        {"diazepam"},
        {BENZODIAZEPINE},
        ("name:valium",),
    ),
    (
        "code alone in a foreign system",
        rx("6470", system="http://acme.org/drugs"),
        set(),
        set(),
        (),
    ),
    (
        "IVIG by name",
        {"text": "Immune globulin intravenous (human) 10%"},
        {"ivig"},
        {IVIG},
        ("name:immune globulin intravenous",),
    ),
    (
        "Rho(D) immune globulin is not IVIG",
        {"text": "Rho(D) immune globulin 300 MCG"},
        set(),
        set(),
        (),
    ),
    ("unrelated", rx("617993", "Amoxicillin 120 MG/ML Oral Suspension"), set(), set(), ()),
    (
        "dexamethasone tablets are systemic",
        {"text": "dexamethasone 4 MG Oral Tablet"},
        {"dexamethasone"},
        {GLUCOCORTICOID},
        ("name:dexamethasone",),
    ),
    (
        "hydrocortisone cream is not",
        {"text": "Hydrocortisone 10 MG/ML Topical Cream"},
        set(),
        set(),
        (),
    ),
    (
        "methylprednisolone is not prednisolone",
        {"text": "methylPREDNISolone 4 MG Oral Tablet"},
        {"methylprednisolone"},
        {GLUCOCORTICOID},
        ("name:methylprednisolone",),
    ),
    (
        "naproxen sodium",
        rx("849574", "Naproxen sodium 220 MG Oral Tablet"),
        {"naproxen"},
        {NSAID},
        ("rxnorm-product:849574",),
    ),
]


@pytest.mark.parametrize(
    ("concept", "ingredients", "classes", "matched_by"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_classification(
    concept: dict[str, Any], ingredients: set[str], classes: set[str], matched_by: tuple[str, ...]
) -> None:
    state = map_patient_state({"meds": bundle(med_request(concept))}, now=NOW)
    (med,) = state.medications
    assert med.ingredients == ingredients
    assert med.classes == classes
    assert med.matched_by == matched_by


LORAZEPAM_MED = {
    "resourceType": "Medication",
    "id": "med1",
    "code": rx("197901", "LORazepam 1 MG Oral Tablet"),
    "ingredient": [
        {
            "itemCodeableConcept": rx("6470"),
            "strength": {
                "numerator": {
                    "value": 1,
                    "unit": "mg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mg",
                },
                "denominator": {
                    "value": 1,
                    "unit": "TAB",
                    "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                    "code": "TAB",
                },
            },
        }
    ],
}
TWO_TABS_BID = [
    {
        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "TAB"}}],
    }
]


def _contained() -> dict[str, Any]:
    return med_request(
        None,
        contained=[{**LORAZEPAM_MED, "id": "m"}],
        medicationReference={"reference": "#m"},
        dosage=TWO_TABS_BID,
    )


RESOLUTION = [
    ("contained", {"meds": _contained()}),
    (
        "same bundle by Medication/id",
        {
            "meds": bundle(
                LORAZEPAM_MED,
                med_request(
                    None, medicationReference={"reference": "Medication/med1"}, dosage=TWO_TABS_BID
                ),
            )
        },
    ),
    (
        "other prefetch key",
        {
            "medication": LORAZEPAM_MED,
            "meds": med_request(
                None, medicationReference={"reference": "Medication/med1"}, dosage=TWO_TABS_BID
            ),
        },
    ),
    (
        "absolute versioned reference",
        {
            "medication": LORAZEPAM_MED,
            "meds": med_request(
                None,
                medicationReference={
                    "reference": "https://ehr.example/fhir/Medication/med1/_history/3"
                },
                dosage=TWO_TABS_BID,
            ),
        },
    ),
    (
        "urn:uuid fullUrl",
        {
            "meds": {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"fullUrl": "urn:uuid:abc", "resource": LORAZEPAM_MED},
                    {
                        "fullUrl": "urn:uuid:def",
                        "resource": med_request(
                            None,
                            medicationReference={"reference": "urn:uuid:abc"},
                            dosage=TWO_TABS_BID,
                        ),
                    },
                ],
            }
        },
    ),
    (
        "R5 medication.concept",
        {
            "meds": med_request(
                None,
                medication={"concept": rx("6470", "LORazepam")},
                dosage=[
                    {
                        "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "mg"}}],
                        "timing": {"code": {"coding": [{"code": "BID"}]}},
                    }
                ],
            )
        },
    ),
]


@pytest.mark.parametrize("prefetch", [c[1] for c in RESOLUTION], ids=[c[0] for c in RESOLUTION])
def test_medication_resolution_and_strength(prefetch: dict[str, Any]) -> None:
    state = map_patient_state(prefetch, now=NOW)
    (med,) = state.medications
    assert med.ingredients == {"lorazepam"} and med.classes == {BENZODIAZEPINE}
    assert med.dose is not None
    assert med.dose.mg_per_day == pytest.approx(4)
    assert state.issues == ()


def test_missing_medication_reference_is_reported() -> None:
    state = map_patient_state(
        {"meds": med_request(None, medicationReference={"reference": "Medication/gone"})}, now=NOW
    )
    (med,) = state.medications
    assert med.classes == frozenset()
    assert any("Medication/gone" in i.reason for i in state.issues)


def _draft(rid: str, concept: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return med_request(concept, rid=rid, status="draft", **extra)


def test_order_context_from_a_bundle_without_type() -> None:
    draft_orders = bundle(
        _draft(
            "a",
            {"text": "LORazepam 0.5 mg"},
            reasonCode={"text": "anxiety"},  # the sandbox sends an object
            dosage=[
                {
                    "doseAndRate": {"doseQuantity": {"value": 0.5, "unit": "mg"}},
                    "timing": {"code": {"text": "BID", "coding": [{"code": "BID"}]}},
                }
            ],
        ),
        _draft("b", None),
        {
            "resourceType": "NutritionOrder",
            "id": "n",
            "status": "draft",
            "intent": "order",
            "patient": {"reference": "Patient/p1"},
        },
        btype=None,
    )
    ctx = map_order_context(draft_orders, ["MedicationRequest/b"], now=NOW)
    assert [d.reference for d in ctx.drafts] == ["MedicationRequest/b", "MedicationRequest/a"]
    assert all(d.is_draft for d in ctx.drafts)
    lorazepam = ctx.drafts[1]
    assert lorazepam.classes == {BENZODIAZEPINE}
    assert lorazepam.dose is not None and lorazepam.dose.mg_per_day == pytest.approx(1)
    assert [d.reference for d in ctx.selected()] == ["MedicationRequest/b"]
    assert [i.resource for i in ctx.issues] == ["MedicationRequest/b"]
    assert "no medication" in ctx.issues[0].reason


@pytest.mark.parametrize(
    "draft_orders",
    [
        None,
        "x",
        5,
        [],
        {"resourceType": "Bundle"},
        {"entry": "nope"},
        {"resourceType": "Bundle", "entry": [None, 1, {}]},
    ],
)
def test_order_context_tolerates_malformed_input(draft_orders: Any) -> None:
    ctx = map_order_context(draft_orders, ["MedicationRequest/x"], now=NOW)
    assert ctx.drafts == ()


def test_order_context_with_no_selections_selects_all() -> None:
    ctx = map_order_context(bundle(_draft("a", rx("197901"))), [], now=NOW)
    assert [m.reference for m in ctx.selected()] == ["MedicationRequest/a"]


def _only(state_meds: tuple[Medication, ...]) -> Medication:
    assert len(state_meds) == 1
    return state_meds[0]


def test_stopped_request_keeps_its_status_reason() -> None:
    req = med_request(
        rx("6851", "methotrexate"), status="stopped", statusReason={"text": "intolerance: nausea"}
    )
    med = _only(map_patient_state({"m": req}, now=NOW).medications)
    assert med.status == "stopped" and med.status_reason == "intolerance: nausea"
    assert med.course is not None and med.course.elapsed_days is None


def test_rxnorm_is_a_known_coding_system_only() -> None:
    assert RXNORM.endswith("rxnorm")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"doNotPerform": True}, "doNotPerform"),
        ({"status": "entered-in-error"}, "entered-in-error"),
    ],
)
def test_requests_that_are_not_medications_are_ignored_and_said(
    fields: dict[str, Any], reason: str
) -> None:
    state = map_patient_state({"m": {**med_request(rx("6470")), **fields}}, now=NOW)
    assert state.medications == ()
    assert [i.resource for i in state.issues] == ["MedicationRequest/mr1"]
    assert reason in state.issues[0].reason


def test_instructions_naming_another_drug_do_not_classify_a_named_order() -> None:
    req = med_request(
        rx("312617", "predniSONE 5 MG Oral Tablet"), dosage=[{"text": "do not take with diazepam"}]
    )
    (med,) = map_patient_state({"m": req}, now=NOW).medications
    assert med.classes == {GLUCOCORTICOID}


def test_a_drugless_draft_is_read_from_its_instructions() -> None:
    draft = med_request(None, status="draft", dosage=[{"text": "LORazepam 1 mg at night"}])
    (med,) = map_order_context(bundle(draft), [], now=NOW).drafts
    assert med.classes == {BENZODIAZEPINE} and med.matched_by == ("name:lorazepam",)
    assert med.name == "LORazepam 1 mg at night"


def test_a_single_selection_string_is_one_selection() -> None:
    drafts = bundle(_draft("a", rx("197901")), _draft("b", rx("6851")))
    ctx = map_order_context(drafts, "MedicationRequest/b", now=NOW)
    assert [m.reference for m in ctx.selected()] == ["MedicationRequest/b"]
