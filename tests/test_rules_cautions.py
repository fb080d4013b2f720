"""RELIEF-1 and CAU-1..CAU-4 rule tests on domain objects built directly."""

from __future__ import annotations

from typing import Any

import pytest

from tests.guideline_builders import condition, dose, draft_resource, meas, med, orders, state
from tests.guideline_run import actions, ids, only, run

SPASM = (condition("spasm"),)


def test_cau2_benzodiazepine_draft_in_spasm_scope_warns_with_delete() -> None:
    diazepam = med("diazepam", "bz1", draft=True)
    cards = run("order-select", state(SPASM), orders(diazepam))
    assert ids(cards) == ["CAU-2"]
    card = cards[0]
    assert card["indicator"] == "warning"
    assert "ref 6" in card["source"]["label"]
    assert "diazepam" in card["summary"]
    [suggestion] = card["suggestions"]
    assert suggestion["actions"] == [
        {
            "type": "delete",
            "description": "Remove the draft order Diazepam product",
            "resourceId": "MedicationRequest/bz1",
        }
    ]
    prov = card["extension"]["org.cds-myopathy.provenance"]
    assert prov["recommendationId"] == "CAU-2"
    assert any("MedicationRequest/bz1" in i for i in prov["inputs"])


@pytest.mark.parametrize(
    ("conditions", "drug"),
    [
        ((), "diazepam"),  # no scope
        ((condition("spasm", status="resolved"),), "diazepam"),  # scope no longer active
        (SPASM, "acetaminophen"),  # not a benzodiazepine
    ],
)
def test_cau2_silent_out_of_scope_or_other_drug(conditions: Any, drug: str) -> None:
    assert run("order-select", state(conditions), orders(med(drug, "x1", draft=True))) == []


def test_cau2_only_selected_drafts_trigger() -> None:
    benzo = med("diazepam", "bz1", draft=True)
    other = med("acetaminophen", "a1", draft=True)
    oc = orders(benzo, other, selected=("MedicationRequest/a1",))
    assert run("order-select", state(SPASM), oc) == []


def test_cau2_two_benzodiazepine_drafts_one_card_two_deletes() -> None:
    oc = orders(med("diazepam", "bz1", draft=True), med("lorazepam", "bz2", draft=True))
    cards = run("order-sign", state((condition("dermatomyositis"),)), oc)
    assert ids(cards) == ["CAU-2"]
    assert cards[0]["selectionBehavior"] == "any"
    deleted = [a["resourceId"] for s in cards[0]["suggestions"] for a in s["actions"]]
    assert deleted == ["MedicationRequest/bz1", "MedicationRequest/bz2"]


def test_cau2_patient_view_active_benzodiazepine_warns_without_delete() -> None:
    cards = run("patient-view", state(SPASM, medications=(med("lorazepam", "l1"),)))
    assert ids(cards) == ["CAU-2"]
    assert "suggestions" not in cards[0]
    assert "lorazepam" in cards[0]["summary"]


UCUM = "http://unitsofmeasure.org"


def _relaxant_raw(rid: str = "mr1") -> dict[str, Any]:
    return draft_resource(
        rid,
        dosageInstruction=[
            {
                "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet", "code": "{tbl}"}}],
            }
        ],
        dispenseRequest={
            "quantity": {"value": 90, "unit": "tablet", "code": "{tbl}"},
            "numberOfRepeatsAllowed": 2,
            "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"},
        },
    )


def test_cau1_long_relaxant_order_warns_and_update_shortens_whole_draft() -> None:
    draft = med("cyclobenzaprine", "mr1", draft=True, dose_=dose(10, per_day=3), days=30)
    raw = _relaxant_raw()
    cards = run("order-select", state(SPASM), orders(draft), {"MedicationRequest/mr1": raw})
    card = only(cards, "CAU-1")
    assert card["indicator"] == "warning"
    assert (
        "21 days" in card["summary"] and "30 days (from expectedSupplyDuration)" in card["detail"]
    )
    [update] = actions(card)
    resource = update["resource"]
    assert resource["id"] == "mr1" and resource["dosageInstruction"] == raw["dosageInstruction"]
    dispense = resource["dispenseRequest"]
    assert dispense["expectedSupplyDuration"]["value"] == 21
    assert dispense["numberOfRepeatsAllowed"] == 0
    assert dispense["quantity"]["value"] == 63  # 1 tablet x 3/day x 21 days
    assert raw["dispenseRequest"]["quantity"]["value"] == 90, "the draft itself is untouched"
    assert "RELIEF-1" in ids(cards)


@pytest.mark.parametrize("days", [14, 21, None])
def test_cau1_short_or_unstated_course_is_silent(days: float | None) -> None:
    draft = med("cyclobenzaprine", "mr1", draft=True, days=days)
    assert "CAU-1" not in ids(run("order-select", state(SPASM), orders(draft)))


def test_cau1_patient_view_relaxant_running_too_long() -> None:
    st = state(SPASM, medications=(med("methocarbamol", "mc", authored_days_ago=35),))
    card = only(run("patient-view", st), "CAU-1")
    assert "running 35 days" in card["summary"]
    assert "suggestions" not in card


def test_relief1_combination_mentions_drowsiness_and_duration() -> None:
    oc = orders(med("cyclobenzaprine", "mr1", draft=True), med("naproxen", "n1", draft=True))
    card = only(run("order-select", state(SPASM), oc), "RELIEF-1")
    assert card["indicator"] == "info"
    assert "drowsiness" in card["detail"] and "2-3 weeks" in card["detail"]
    assert "duration not stated in the order" in card["detail"]
    assert "refs 5, 4, 3" in card["source"]["label"]


def test_relief1_silent_out_of_scope_and_for_other_drugs() -> None:
    assert run("order-select", state(()), orders(med("naproxen", "n1", draft=True))) == []
    assert "RELIEF-1" not in ids(
        run("order-select", state(SPASM), orders(med("acetaminophen", "a1", draft=True)))
    )


def test_cau3_nsaid_ordered_for_long_course_warns() -> None:
    draft = med("naproxen", "n1", draft=True, days=30)
    card = only(run("order-select", state(SPASM), orders(draft)), "CAU-3")
    assert card["indicator"] == "warning" and "ref 7" in card["source"]["label"]
    assert "more than 14 days (local policy)" in card["detail"]


def test_cau3_patient_view_long_running_nsaid_is_info() -> None:
    st = state(SPASM, medications=(med("ibuprofen", "i1", authored_days_ago=40),))
    assert only(run("patient-view", st), "CAU-3")["indicator"] == "info"
    short = state(SPASM, medications=(med("ibuprofen", "i1", authored_days_ago=5),))
    assert "CAU-3" not in ids(run("patient-view", short))


def test_cau4_cardiac_condition_and_nsaid_order_warns() -> None:
    st = state((condition("dermatomyositis"), condition("cardiac_involvement", "Condition/myo")))
    card = only(run("order-select", st, orders(med("naproxen", "n1", draft=True))), "CAU-4")
    assert card["indicator"] == "warning"
    assert "Condition/myo" in card["detail"] and "naproxen" in card["summary"]


def test_cau4_high_troponin_counts_as_cardiac_involvement() -> None:
    st = state(SPASM, measurements=(meas("troponin", 0.9, 2, unit="ng/mL", high=0.04),))
    card = only(run("order-select", st, orders(med("cyclobenzaprine", "c1", draft=True))), "CAU-4")
    assert "above its upper limit" in card["detail"]


def test_cau4_silent_without_cardiac_involvement_or_for_safe_drug() -> None:
    normal = state(SPASM, measurements=(meas("troponin", 0.01, 2, unit="ng/mL", high=0.04),))
    assert "CAU-4" not in ids(run("order-select", normal, orders(med("naproxen", "n", draft=True))))
    cardiac = state((*SPASM, condition("cardiac_involvement")))
    assert "CAU-4" not in ids(
        run("order-select", cardiac, orders(med("acetaminophen", "a", draft=True)))
    )


def test_cau4_troponin_without_range_is_said_not_assumed() -> None:
    st = state(SPASM, measurements=(meas("troponin", 180, 2, unit="ng/L"),))
    card = only(run("order-select", st, orders(med("naproxen", "n", draft=True))), "CAU-4")
    assert card["indicator"] == "info"
    assert "no reference range" in card["summary"]
