"""Dosing: weekly methotrexate totals, supplies, children, glucocorticoid dose,
the dose actually suggested, real clients' orders, and invalid diagnosis records."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.errors import ConfigError
from cds_service.guideline.knowledge import load_knowledge, parse_knowledge
from cds_service.guideline.rules.immunosuppression import prednisone_dose
from fhir_mappings import map_order_context, map_patient_state
from fhir_mappings.domain import Patient
from tests.guideline_builders import PATIENT_ID, condition, meas, med, state
from tests.guideline_builders import dose as built_dose
from tests.guideline_run import ENGINE, actions, ids, only, run
from tests.mapping_builders import NOW, med_request, rx

UCUM = "http://unitsofmeasure.org"
MTX_10 = rx("105586", "Methotrexate 10 MG Oral Tablet")
PRED_5 = rx("312617", "predniSONE 5 MG Oral Tablet")
DM = (condition("dermatomyositis"),)


def draft_of(concept: dict[str, Any], dose_q: dict[str, Any], rep: dict[str, Any], **extra: Any):
    return med_request(
        concept,
        rid="d1",
        status="draft",
        dosage=[{"timing": {"repeat": rep}, "doseAndRate": [{"doseQuantity": dose_q}]}],
        **extra,
    )


def drafts_context(*resources: dict[str, Any]) -> Any:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    refs = [f"MedicationRequest/{r['id']}" for r in resources]
    return map_order_context(bundle, refs, now=NOW), {refs[i]: r for i, r in enumerate(resources)}


def order_cards(st_: Any, *resources: dict[str, Any]) -> list[dict[str, Any]]:
    oc, raw = drafts_context(*resources)
    return run("order-select", st_, oc, raw)


# ---- principle 3 ---------------------------------------------------------------------

MG = {"value": 5, "unit": "mg", "system": UCUM, "code": "mg"}


@pytest.mark.parametrize(
    ("rep", "days", "per_week"),
    [
        ({"frequency": 1, "period": 1, "periodUnit": "wk"}, 1, 5),
        ({"frequency": 3, "period": 1, "periodUnit": "d", "dayOfWeek": ["mon"]}, 1, 15),
        ({"frequency": 1, "period": 12, "periodUnit": "h", "dayOfWeek": ["tue"]}, 1, 10),
        ({"frequency": 3, "period": 1, "periodUnit": "wk", "when": ["MORN", "AFT", "EVE"]}, 1, 15),
        ({"dayOfWeek": ["mon"], "timeOfDay": ["08:00:00", "20:00:00"]}, 1, 10),
        ({"frequency": 1, "period": 1, "periodUnit": "d", "dayOfWeek": ["mon", "thu"]}, 2, 10),
        ({"frequency": 3, "period": 1, "periodUnit": "wk"}, 3, 15),
        ({"frequency": 1, "period": 1, "periodUnit": "d"}, 7, 35),
        ({"frequency": 1, "period": 2, "periodUnit": "wk"}, 0.5, 2.5),
    ],
)
def test_dosing_days_a_week_and_weekly_total(
    rep: dict[str, Any], days: float, per_week: float
) -> None:
    oc, _ = drafts_context(draft_of(MTX_10, MG, rep))
    dose = oc.drafts[0].dose
    assert dose is not None
    assert dose.days_per_week == pytest.approx(days)
    assert dose.mg_per_week == pytest.approx(per_week)


@pytest.mark.parametrize(
    "rep",
    [
        {"frequency": 3, "period": 1, "periodUnit": "d", "dayOfWeek": ["mon"]},
        {"frequency": 2, "period": 1, "periodUnit": "wk", "when": ["MORN", "EVE"]},
        {"frequency": 1, "period": 1, "periodUnit": "wk", "dayOfWeek": ["fri"]},
    ],
)
def test_split_weekly_dose_within_one_day_is_no_error(rep: dict[str, Any]) -> None:
    cards = order_cards(state(), draft_of(MTX_10, MG, rep))
    assert cards == []


@pytest.mark.parametrize(
    ("rep", "label", "kept_mg_week"),
    [
        ({"frequency": 1, "period": 1, "periodUnit": "d"}, "Change to 5 mg once weekly", 5),
        (
            {"frequency": 3, "period": 1, "periodUnit": "d"},
            "Change to 3 doses of 5 mg on one day a week",
            15,
        ),
        (
            {"frequency": 1, "period": 1, "periodUnit": "d", "dayOfWeek": ["mon", "wed", "fri"]},
            "Change to 3 doses of 5 mg on one day a week",
            15,
        ),
        (
            {"frequency": 2, "period": 1, "periodUnit": "wk"},
            "Change to 2 doses of 5 mg on one day a week",
            10,
        ),
    ],
)
def test_weekly_correction_keeps_the_intended_total_and_passes_the_check(
    rep: dict[str, Any], label: str, kept_mg_week: float
) -> None:
    cards = order_cards(state(), draft_of(MTX_10, MG, rep))
    card = only(cards, "IS-2")
    assert card["indicator"] == "critical"
    [suggestion] = card["suggestions"]
    assert suggestion["label"] == label
    [update] = suggestion["actions"]
    assert f"({kept_mg_week:g} mg/week)" in update["description"]
    assert "?" not in card["detail"]
    # The corrected order, sent again, gets no critical card, and its total is as said.
    again = order_cards(state(), update["resource"])
    assert "critical" not in [c["indicator"] for c in again]
    oc, _ = drafts_context(update["resource"])
    assert oc.drafts[0].dose.mg_per_week == pytest.approx(kept_mg_week)


def test_no_correction_that_would_pass_40_mg_a_week() -> None:
    rep = {"frequency": 3, "period": 1, "periodUnit": "d"}
    big = {"value": 15, "unit": "mg", "system": UCUM, "code": "mg"}
    card = only(order_cards(state(), draft_of(MTX_10, big, rep)), "IS-2")
    assert "suggestions" not in card
    assert "would exceed the 40 mg/week maximum" in card["detail"]


# ---- principle 5 ---------------------------------------------------------------------

CYCLO = rx("828348", "Cyclobenzaprine 10 MG Oral Tablet")
TID = {"frequency": 3, "period": 1, "periodUnit": "d"}


@pytest.mark.parametrize(
    ("dispense", "days"),
    [
        ({"quantity": {"value": 90, "unit": "tablet", "code": "{tbl}", "system": UCUM}}, 30),
        (
            {
                "quantity": {"value": 30, "unit": "tablet", "code": "TAB"},
                "numberOfRepeatsAllowed": 8,
            },
            90,
        ),
        (
            {
                "expectedSupplyDuration": {"value": 30, "unit": "days", "code": "d"},
                "numberOfRepeatsAllowed": 2,
            },
            90,
        ),
        ({"validityPeriod": {"start": "2026-01-01", "end": "2026-04-01"}}, 90),
        ({"quantity": {"value": 900, "unit": "mg", "code": "mg", "system": UCUM}}, 30),
    ],
)
def test_supply_duration_from_what_was_dispensed(dispense: dict[str, Any], days: float) -> None:
    request = draft_of(
        CYCLO, {"value": 10, "unit": "mg", "code": "mg"}, TID, dispenseRequest=dispense
    )
    oc, _ = drafts_context(request)
    assert oc.drafts[0].course is not None
    assert oc.drafts[0].course.days == pytest.approx(days)


def test_ninety_day_relaxant_supply_is_shortened_in_tablets() -> None:
    request = draft_of(
        CYCLO,
        {"value": 10, "unit": "mg", "code": "mg"},
        TID,
        dispenseRequest={"quantity": {"value": 270, "unit": "tablet", "code": "{tbl}"}},
    )
    cards = order_cards(state((condition("spasm"),)), request)
    card = only(cards, "CAU-1")
    assert "90 days" in card["detail"]
    [update] = actions(card)
    assert update["resource"]["dispenseRequest"]["quantity"]["value"] == 63  # 3 a day x 21


# ---- principle 6 ---------------------------------------------------------------------


def test_value_set_decisions_are_recorded_with_their_source() -> None:
    decisions = load_knowledge().value_set_decisions
    baclofen = [d for d in decisions if "baclofen" in d.members]
    assert baclofen and baclofen[0].value_set == "muscle_relaxant"
    assert "excluded" in baclofen[0].decision and baclofen[0].source


def test_no_advice_the_guideline_does_not_give() -> None:
    st_ = state(
        (condition("spasm"),), medications=(med("methocarbamol", "m", authored_days_ago=40),)
    )
    text = json.dumps(run("patient-view", st_)).lower()
    for phrase in ("consider stopping", "taper", "switch to", "alternative"):
        assert phrase not in text


# ---- principle 7 ---------------------------------------------------------------------


def _is1_suggested(st_: Any) -> dict[str, Any] | None:
    cards = run("patient-view", st_)
    found = [c for c in cards if c["source"]["topic"]["code"] == "IS-1"]
    acts = actions(found[0]) if found else []
    return acts[0]["resource"] if acts else None


@settings(max_examples=120, deadline=None)
@given(
    kg=st.floats(min_value=2.0, max_value=400.0, allow_nan=False).map(lambda w: round(w, 1)),
    age=st.sampled_from([3, 10, 17, 18, 45]),
    tolerance=st.sampled_from([0.0, 0.05, 0.1]),
    step=st.sampled_from([1.0, 2.5, 5.0, 10.0]),
)
def test_suggested_prednisone_passes_the_order_check_at_every_weight(
    kg: float, age: int, tolerance: float, step: float
) -> None:
    policy = dict(ENGINE.knowledge.policy)
    policy["prednisone_dose_tolerance"] = replace(
        policy["prednisone_dose_tolerance"], value=tolerance
    )
    policy["prednisone_round_mg"] = replace(policy["prednisone_round_mg"], value=step)
    knowledge = replace(ENGINE.knowledge, policy=policy)
    engine = type(ENGINE)(knowledge)
    st_ = replace(
        state(DM, measurements=(meas("weight", kg, 2, unit="kg"), meas("ck", 900, 3, high=170))),
        patient=Patient(PATIENT_ID, None, age, "female"),
    )
    cards = engine.run(
        "patient-view", st_, None, now=NOW, patient_id=PATIENT_ID, draft_resources={}
    )
    is1 = [c for c in cards if c["source"]["topic"]["code"] == "IS-1"]
    assert len(is1) == 1
    created = actions(is1[0])
    if not created:  # 1 mg/kg/day below one step: said, no order
        assert "no dose suggested" in is1[0]["summary"]
        return
    resource = {**created[0]["resource"], "id": "s1"}
    oc, raw = drafts_context(resource)
    checked = engine.run(
        "order-select", st_, oc, now=NOW, patient_id=PATIENT_ID, draft_resources=raw
    )
    assert [c["summary"] for c in checked if c["source"]["topic"]["code"] == "IS-1"] == []
    if age < 18:
        assert "specialist decision" in is1[0]["summary"]


@pytest.mark.parametrize(
    ("weight", "final"), [(72.4, 70), (72.5, 75), (3.0, 0), (7.3, 5), (104, 80)]
)
def test_rounding_never_passes_the_ceiling(weight: float, final: float) -> None:
    assert prednisone_dose(weight, 5, 80, weight * 1.1).final_mg == final


def test_child_gets_no_fixed_methotrexate_dose() -> None:
    st_ = replace(
        state(DM, medications=(med("prednisone", "p", dose_=built_dose(30)),)),
        patient=Patient(PATIENT_ID, None, 11, "male"),
    )
    card = only(run("patient-view", st_), "IS-2")
    assert "suggestions" not in card and "specialist decision" in card["summary"]
    low = draft_of(MTX_10, MG, {"frequency": 1, "period": 1, "periodUnit": "wk"})
    texts = json.dumps(order_cards(st_, low))
    assert "below the 15-20 mg/week" not in texts


# ---- principle 9 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ingredient", "mg_day", "route", "counts"),
    [
        ("hydrocortisone", 20, "oral", False),
        ("hydrocortisone", 100, "intravenous", True),
        ("prednisone", 7.5, "oral", False),
        ("prednisone", 10, "oral", True),
        ("methylprednisolone", 48, "oral", True),
        ("dexamethasone", 6, "oral", True),
        ("prednisone", 40, "inhaled", False),
    ],
)
def test_first_line_glucocorticoid_by_prednisone_equivalent(
    ingredient: str, mg_day: float, route: str, counts: bool
) -> None:
    steroid = med(ingredient, "g", dose_=built_dose(mg_day, route=route))
    st_ = state(DM, medications=(steroid,), measurements=(meas("weight", 70, 2, unit="kg"),))
    cards = run("patient-view", st_)
    assert ("IS-1" not in ids(cards)) == counts
    assert ("IS-2" in ids(cards)) == counts


def test_equivalence_table_is_validated() -> None:
    from importlib import resources

    import yaml

    raw = yaml.safe_load(
        resources.files("cds_service.guideline").joinpath("data/knowledge.yaml").read_text()
    )
    raw["glucocorticoid_equivalence"]["mg_equal_to_5_mg_prednisone"]["hydrocortisone"] = -1
    with pytest.raises(ConfigError, match=r"glucocorticoid_equivalence\.hydrocortisone"):
        parse_knowledge(raw)


# ---- principle 13 --------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit",
    [
        {"code": "{pill}", "system": UCUM},
        {"code": "{tablet}", "system": UCUM},
        {"code": "{tbl}", "system": UCUM},
        {"code": "{capsule}", "system": UCUM},
        {"code": "TAB", "unit": "tablet"},
        {"unit": "tablet"},
    ],
)
def test_count_units_become_mg_through_the_product_strength(unit: dict[str, Any]) -> None:
    request = draft_of(
        PRED_5, {"value": 12, **unit}, {"frequency": 1, "period": 1, "periodUnit": "d"}
    )
    oc, _ = drafts_context(request)
    assert oc.drafts[0].dose.mg_per_day == pytest.approx(60)


def test_strength_from_the_product_code_alone() -> None:
    concept = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "105586"}]
    }
    request = draft_of(
        concept,
        {"value": 2, "code": "{pill}", "system": UCUM},
        {"frequency": 1, "period": 1, "periodUnit": "wk"},
    )
    oc, _ = drafts_context(request)
    assert oc.drafts[0].dose.mg_per_week == pytest.approx(20)


@pytest.mark.parametrize("freq", [1, 2, 3, 4])
def test_sandbox_bid_tid_qid_methotrexate_is_critical_and_never_shows_question_marks(
    freq: int,
) -> None:
    request = draft_of(
        MTX_10,
        {"value": 1, "code": "{pill}", "system": UCUM},
        {"frequency": freq, "period": 1, "periodUnit": "d"},
    )
    card = only(order_cards(state(), request), "IS-2")
    assert card["indicator"] == "critical"
    assert "?" not in card["summary"] + card["detail"]


def test_unknown_strength_says_which_input_is_unknown() -> None:
    concept = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "8640"}],
        "text": "prednisone",
    }
    request = draft_of(
        concept,
        {"value": 3, "code": "{pill}", "system": UCUM},
        {"frequency": 2, "period": 1, "periodUnit": "d"},
    )
    st_ = state(DM, measurements=(meas("weight", 70, 2, unit="kg"),))
    card = only(order_cards(st_, request), "IS-1")
    assert "{pill}" in card["detail"] and "no matching strength" in card["detail"]
    assert "? mg" not in card["detail"] + card["summary"]


# ---- principle 14 --------------------------------------------------------------------

DM_CONDITION = {
    "resourceType": "Condition",
    "id": "c-bad",
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
        ]
    },
    "code": {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "396230008", "display": "Dermatomyositis"}
        ],
        "text": "Dermatomyositis",
    },
    "subject": {"reference": "Patient/p1"},
}


def _body(condition_resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "0b6c3c7e-6b55-4a36-9e55-2f6c7d1d0a11",
        "context": {"patientId": "p1", "userId": "Practitioner/x"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"},
            "conditions": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": condition_resource}],
            },
        },
    }


def _summaries(payload: dict[str, Any]) -> list[str]:
    return [c["summary"] for c in payload["cards"]]


@pytest.mark.parametrize(
    "broken",
    [
        {**DM_CONDITION, "code": "Dermatomyositis"},
        {**DM_CONDITION, "onsetDateTime": "2023-02-30"},
        {**DM_CONDITION, "recordedDate": "2023-13-01"},
    ],
)
def test_invalid_scope_condition_is_reported_not_dropped(
    client: FlaskClient, broken: dict[str, Any]
) -> None:
    response = client.post("/cds-services/myopathy-patient-view", json=_body(broken))
    assert response.status_code == 200
    payload = response.get_json()
    [card] = payload["cards"]
    assert card["indicator"] == "warning" and "could not be used" in card["summary"]
    assert "Condition/c-bad" in card["detail"]
    unusable = payload["extension"]["org.cds-myopathy.unusable-inputs"]
    assert [u["resource"] for u in unusable] == ["Condition/c-bad"]


def test_invalid_utf8_condition_is_reported(client: FlaskClient) -> None:
    raw = json.dumps(_body(DM_CONDITION)).encode()
    raw = raw.replace(b'"text": "Dermatomyositis"', b'"text": "Dermatomyositis \xff"')
    response = client.post(
        "/cds-services/myopathy-patient-view", data=raw, content_type="application/json"
    )
    assert response.status_code == 200
    payload = response.get_json()
    assert any("could not be used" in s for s in _summaries(payload))
    assert (
        payload["extension"]["org.cds-myopathy.unusable-inputs"][0]["resource"] == "Condition/c-bad"
    )


def test_valid_condition_gets_no_unusable_report(client: FlaskClient) -> None:
    payload = client.post(
        "/cds-services/myopathy-patient-view", json=_body(DM_CONDITION)
    ).get_json()
    assert "org.cds-myopathy.unusable-inputs" not in payload.get("extension", {})
    assert not any("could not be used" in s for s in _summaries(payload))


def test_everyone_checks_still_run_beside_an_unusable_condition() -> None:
    state_ = map_patient_state(
        {
            "conditions": {
                "resourceType": "Bundle",
                "entry": [{"resource": {**DM_CONDITION, "code": 7}}],
            }
        },
        now=NOW,
    )
    daily = draft_of(MTX_10, MG, {"frequency": 1, "period": 1, "periodUnit": "d"})
    found = ids(order_cards(state_, daily))
    assert sorted(found) == ["IS-2", "SCOPE-1"]


@pytest.mark.parametrize("tolerance", [0.0, 0.05, 0.1, 1.0])
@pytest.mark.parametrize("step", [1.0, 2.5, 5.0, 10.0, 20.0])
def test_rounding_stays_within_the_check_at_every_weight(tolerance: float, step: float) -> None:
    for tenth in range(20, 4001):  # 2.0 .. 400.0 kg in 0.1 kg steps
        kg = tenth / 10
        ceiling = kg * (1 + tolerance)
        final = prednisone_dose(kg, step, 80, ceiling).final_mg
        assert final <= ceiling + 1e-9 and final <= 80, (kg, final)
        assert final >= 0
