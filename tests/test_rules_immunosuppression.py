"""IS-1 prednisone, IS-2 methotrexate, IS-3 MMF: dose maths, safety checks, missing data."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from cds_service.guideline.rules.immunosuppression import prednisone_dose
from tests.guideline_builders import (
    PATIENT_ID,
    allergy,
    condition,
    dose,
    draft_resource,
    meas,
    med,
    orders,
    state,
)
from tests.guideline_run import actions, ids, only, run

DM = (condition("dermatomyositis"),)
UCUM = "http://unitsofmeasure.org"


@pytest.mark.parametrize(
    ("weight", "expected", "capped"),
    [(72.4, 70, False), (72.5, 75, False), (58, 60, False), (80, 80, False), (104, 80, True)],
)
def test_prednisone_dose_rounds_to_5_mg_and_caps(
    weight: float, expected: float, capped: bool
) -> None:
    result = prednisone_dose(weight, 5, 80)
    assert (result.final_mg, result.capped) == (expected, capped)


def test_is1_patient_view_suggests_weight_based_prednisone_with_maths() -> None:
    st = state(
        DM,
        measurements=(
            meas("weight", 72.4, 10, unit="kg", rid="Observation/w1"),
            meas("ck", 900, 5, high=170),
        ),
    )
    card = only(run("patient-view", st), "IS-1")
    assert card["summary"].startswith("Consider prednisone 70 mg/day orally")
    assert "(1 mg/kg/day for 72.4 kg)" in card["summary"]
    assert "72.4 kg measured 2026-11-15" in card["detail"]
    assert "1 mg/kg/day x 72.4 kg = 72.4 mg/day" in card["detail"]
    assert "`prednisone_max_mg_per_day` = 80 mg/day" in card["detail"]
    [create] = actions(card)
    resource = create["resource"]
    assert resource["status"] == "draft" and resource["intent"] == "proposal"
    assert resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
    assert resource["medicationCodeableConcept"]["coding"][0]["code"] == "8640"
    dosage = resource["dosageInstruction"][0]
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d"}
    assert dosage["route"]["coding"][0]["code"] == "26643006"
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 70,
        "unit": "mg",
        "system": UCUM,
        "code": "mg",
    }
    assert "Observation/w1" in " ".join(card["extension"]["org.cds-myopathy.provenance"]["inputs"])


def test_is1_cap_is_named_as_local_policy() -> None:
    st = state(DM, measurements=(meas("weight", 104, 3, unit="kg"), meas("ck", 900, 5, high=170)))
    card = only(run("patient-view", st), "IS-1")
    assert (
        "80 mg/day orally (= 0.77 mg/kg/day for 104 kg, capped by local policy)" in card["summary"]
    )
    assert "1 mg/kg/day for" not in card["summary"]
    assert "0.77 mg/kg/day" in actions(card)[0]["resource"]["dosageInstruction"][0]["text"]
    assert "0.77 mg/kg/day" in actions(card)[0]["description"]
    assert "capped at the local maximum of 80 mg/day" in card["detail"]
    assert (
        actions(card)[0]["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"][
            "value"
        ]
        == 80
    )


@pytest.mark.parametrize(
    ("measurements", "unavailable", "why"),
    [
        ((), (), "no body weight is on record"),
        ((meas("weight", 70, 200, unit="kg"),), (), "older than 90 days"),
        ((meas("weight", 0.7, 2, unit="kg"),), (), "is unusable"),
        ((), ("weight",), "could not be retrieved"),
    ],
)
def test_is1_without_usable_weight_gives_no_dose_and_says_why(
    measurements: Any, unavailable: Any, why: str
) -> None:
    card = only(
        run("patient-view", state(DM, measurements=measurements, unavailable=unavailable)), "IS-1"
    )
    assert why in card["detail"]
    assert "suggestions" not in card
    assert "mg/day orally" not in card["summary"]


def test_is1_silent_when_already_on_glucocorticoid_or_out_of_scope() -> None:
    weight = (meas("weight", 70, 2, unit="kg"),)
    on_pred = state(DM, medications=(med("prednisone", dose_=dose(60)),), measurements=weight)
    assert "IS-1" not in ids(run("patient-view", on_pred))
    spasm_only = state((condition("spasm"),), measurements=weight)
    assert run("patient-view", spasm_only) == []


def test_is1_severe_disease_mentions_methylprednisolone_without_dose() -> None:
    st = state(
        (condition("dermatomyositis"), condition("cardiac_involvement", "Condition/myocarditis")),
        measurements=(meas("weight", 70, 2, unit="kg"),),
    )
    card = only(run("patient-view", st), "IS-1")
    assert "IV methylprednisolone" in card["detail"]
    assert "gives no dose" in card["detail"]


def test_is1_order_select_warns_above_1_mg_per_kg() -> None:
    st = state(DM, measurements=(meas("weight", 60, 5, unit="kg"),))
    draft = med("prednisone", "pd1", draft=True, dose_=dose(80))
    card = only(run("order-select", st, orders(draft)), "IS-1")
    assert card["indicator"] == "warning"
    assert "80 mg/day exceeds 1 mg/kg/day" in card["summary"]
    assert "ceiling is 66 mg/day" in card["detail"]


@pytest.mark.parametrize("mg", [60, 65])
def test_is1_order_select_silent_within_tolerance(mg: float) -> None:
    st = state(DM, measurements=(meas("weight", 60, 5, unit="kg"),))
    draft = med("prednisone", "pd1", draft=True, dose_=dose(mg))
    assert "IS-1" not in ids(run("order-select", st, orders(draft)))


def test_is1_order_select_without_weight_says_unchecked() -> None:
    draft = med("prednisone", "pd1", draft=True, dose_=dose(60))
    card = only(run("order-select", state(DM), orders(draft)), "IS-1")
    assert card["indicator"] == "info"
    assert "no usable weight" in card["summary"]


def test_is1_order_select_above_cap_warns_even_without_weight() -> None:
    draft = med("prednisone", "pd1", draft=True, dose_=dose(100))
    card = only(run("order-select", state(DM), orders(draft)), "IS-1")
    assert card["indicator"] == "warning" and "local 80 mg/day cap" in card["summary"]


def _mtx_draft(rid: str = "mx1", period_unit: str = "d") -> dict[str, Any]:
    return draft_resource(
        rid,
        dosageInstruction=[
            {
                "text": "10 mg daily",
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": period_unit}},
                "doseAndRate": [
                    {"doseQuantity": {"value": 10, "unit": "mg", "system": UCUM, "code": "mg"}}
                ],
            }
        ],
    )


def test_is2_daily_methotrexate_is_critical_for_everyone_with_weekly_update() -> None:
    draft = med("methotrexate", "mx1", draft=True, dose_=dose(10, per_day=1))
    raw = _mtx_draft()
    cards = run("order-select", state(()), orders(draft), {"MedicationRequest/mx1": raw})
    assert ids(cards) == ["IS-2"]
    card = cards[0]
    assert card["indicator"] == "critical"
    assert "70 mg/week" in card["detail"]
    [update] = actions(card)
    assert update["type"] == "update"
    resource = update["resource"]
    assert resource["id"] == "mx1" and resource["subject"] == raw["subject"]
    assert resource["dosageInstruction"][0]["timing"]["repeat"] == {
        "frequency": 1,
        "period": 1,
        "periodUnit": "wk",
    }
    assert raw["dosageInstruction"][0]["timing"]["repeat"]["periodUnit"] == "d", "draft mutated"


def test_is2_over_40_mg_week_is_critical() -> None:
    draft = med("methotrexate", "mx1", draft=True, dose_=dose(50, interval_days=7))
    card = only(run("order-select", state(()), orders(draft)), "IS-2")
    assert card["indicator"] == "critical" and "50 mg/week" in card["summary"]


def test_is2_weekly_15_mg_subcutaneous_is_silent() -> None:
    draft = med(
        "methotrexate", "mx1", draft=True, dose_=dose(15, interval_days=7, route="subcutaneous")
    )
    assert "IS-2" not in ids(run("order-select", state(DM), orders(draft)))


def test_is2_oral_low_start_is_info_in_myopathy_scope_only() -> None:
    draft = med("methotrexate", "mx1", draft=True, dose_=dose(10, interval_days=7))
    card = only(run("order-select", state(DM), orders(draft)), "IS-2")
    assert card["indicator"] == "info"
    assert "below the 15-20 mg/week" in card["detail"] and "subcutaneous" in card["detail"]
    assert run("order-select", state(()), orders(draft)) == []


def test_is2_unknown_frequency_is_said() -> None:
    draft = med("methotrexate", "mx1", draft=True, dose_=None)
    card = only(run("order-select", state(()), orders(draft)), "IS-2")
    assert "no computable weekly dose" in card["summary"]


def test_is2_patient_view_suggests_weekly_subcutaneous_methotrexate() -> None:
    st = state(DM, medications=(med("prednisone", dose_=dose(60)),))
    card = only(run("patient-view", st), "IS-2")
    resource = actions(card)[0]["resource"]
    dosage = resource["dosageInstruction"][0]
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "wk"}
    assert dosage["route"]["coding"][0]["code"] == "34206005"
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 15
    assert resource["medicationCodeableConcept"]["coding"][0]["code"] == "6851"


@pytest.mark.parametrize(
    "extra",
    [
        {"medications": (med("prednisone", dose_=dose(60)), med("methotrexate", "m2"))},
        {"medications": ()},
        {
            "medications": (med("prednisone", dose_=dose(60)),),
            "allergies": (allergy("methotrexate"),),
        },
    ],
)
def test_is2_patient_view_silent_when_not_indicated(extra: dict[str, Any]) -> None:
    assert "IS-2" not in ids(run("patient-view", state(DM, **extra)))


def test_is3_intolerance_and_methotrexate_order_names_mmf_and_deletes_draft() -> None:
    draft = med(
        "methotrexate", "mx1", draft=True, dose_=dose(15, interval_days=7, route="subcutaneous")
    )
    st = state(DM, allergies=(allergy("methotrexate"),))
    card = only(run("order-select", st, orders(draft)), "IS-3")
    assert card["indicator"] == "warning"
    assert "mycophenolate mofetil" in card["summary"]
    assert actions(card) == [
        {
            "type": "delete",
            "description": "Remove the draft order Methotrexate product",
            "resourceId": "MedicationRequest/mx1",
        }
    ]
    assert "no MMF dose" in card["detail"]


def test_is3_stopped_methotrexate_with_reason_counts_as_intolerance() -> None:
    stopped = med("methotrexate", "old", status="stopped", status_reason="nausea")
    st = state(DM, medications=(stopped,))
    card = only(run("patient-view", st), "IS-3")
    assert "nausea" in card["detail"] and card["indicator"] == "info"


def test_is3_silent_without_intolerance_or_when_mmf_active() -> None:
    assert "IS-3" not in ids(run("patient-view", state(DM)))
    st = state(
        DM, allergies=(allergy("methotrexate"),), medications=(med("mycophenolate mofetil", "mmf"),)
    )
    assert "IS-3" not in ids(run("patient-view", st))


def test_is1_unusable_latest_weight_is_named() -> None:
    bad = msgspec.structs.replace(
        meas("weight", None, 1, unit="kg", rid="Observation/w9"),
        unusable_reason="unit 'stone' not convertible",
    )
    st = state(DM, measurements=(meas("weight", 70, 30, unit="kg"), bad))
    card = only(run("patient-view", st), "IS-1")
    assert "Observation/w9) is unusable: unit 'stone' not convertible" in card["detail"]
    assert "suggestions" not in card
