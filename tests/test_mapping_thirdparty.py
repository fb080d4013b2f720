"""Third-party data (tests/data/thirdparty, MANIFEST.md) maps without exceptions, known facts."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings import map_order_context, map_patient_state
from fhir_mappings.domain import BENZODIAZEPINE, GLUCOCORTICOID, METHOTREXATE, NSAID, PatientState
from tests.conftest import THIRDPARTY
from tests.mapping_builders import NOW

SYNTHEA = sorted(THIRDPARTY.glob("synthea_r4_*.json"))


@cache
def load(name: str) -> Any:
    (path,) = THIRDPARTY.glob(f"*{name}*.json")
    return json.loads(path.read_text("utf-8"))


@cache
def state_of(name: str) -> PatientState:
    return map_patient_state({"everything": load(name)}, now=NOW)


def meds_by_code(state: PatientState, code: str) -> list[Any]:
    return [m for m in state.medications if any(c.code == code for c in m.codings)]


@pytest.mark.parametrize("path", SYNTHEA, ids=[p.name.split("_")[2] for p in SYNTHEA])
def test_every_synthea_bundle_maps_cleanly(path: Path) -> None:
    data = json.loads(path.read_text("utf-8"))
    n_requests = sum(
        1 for e in data["entry"] if e["resource"]["resourceType"] == "MedicationRequest"
    )
    state = map_patient_state({"everything": data}, now=NOW)
    assert state.issues == ()
    assert state.patient is not None and state.patient.age_years is not None
    assert len(state.medications) == n_requests
    assert state.get_series("weight").latest is not None
    assert state.get_series("bp_systolic").latest is not None


def test_claudie_walsh_prednisone_is_a_glucocorticoid() -> None:
    (pred,) = meds_by_code(state_of("Claudie_Walsh"), "312617")
    assert pred.classes == {GLUCOCORTICOID} and pred.ingredients == {"prednisone"}
    assert pred.matched_by == ("rxnorm-product:312617",)
    # doseQuantity {value: 1} without a unit: not guessed as 1 tablet of 5 mg.
    assert pred.dose is not None and pred.dose.mg_per_day is None
    assert "dose has no unit" in pred.dose.unknown
    assert pred.dose.administrations_per_day == 1 and pred.dose.route == "oral"


@pytest.mark.parametrize(
    ("code", "ingredient"), [("563026", "diazepam"), ("1153378", "clonazepam")]
)
def test_ernie_rosenbaum_benzodiazepines(code: str, ingredient: str) -> None:
    found = meds_by_code(state_of("Ernie_Rosenbaum"), code)
    assert found
    assert all(m.classes == {BENZODIAZEPINE} and m.ingredients == {ingredient} for m in found)


def test_ernie_rosenbaum_active_clonazepam_has_run_for_decades() -> None:
    (klonopin,) = meds_by_code(state_of("Ernie_Rosenbaum"), "1153378")
    assert klonopin.status == "active"
    assert klonopin.course is not None and klonopin.course.source == "since authoredOn"
    assert klonopin.course.elapsed_days is not None and klonopin.course.elapsed_days > 365 * 80


def test_cathryn_windler_zero_width_displays_do_not_break_matching() -> None:
    raw_text = json.dumps(load("Cathryn_Windler"), ensure_ascii=False)
    assert "\u200b" in raw_text
    state = state_of("Cathryn_Windler")
    assert state.get_series("alt").latest is not None
    assert state.get_series("ast").latest is not None
    # The same bundle's displays used for name matching: naproxen with its code removed.
    zw = next(
        e["resource"]
        for e in load("Cathryn_Windler")["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
        and "849574" in json.dumps(e["resource"])
    )
    text_only = {
        **zw,
        "medicationCodeableConcept": {"text": "Na\u200bproxen sodium 220 MG Oral Tablet"},
    }
    (med,) = map_patient_state({"m": text_only}, now=NOW).medications
    assert med.classes == {NSAID} and med.matched_by == ("name:naproxen",)


def test_jordan_cruickshank_iu_per_litre_alt_normalises_to_u_per_litre() -> None:
    alt = state_of("Jordan_Cruickshank").get_series("alt").latest
    assert alt is not None
    assert alt.original_unit == "IU/L" and alt.unit == "U/L"
    assert alt.value == pytest.approx(142.266670665861)


def test_jordan_cruickshank_glucose_and_hba1c() -> None:
    state = state_of("Jordan_Cruickshank")
    assert {m.analyte for m in state.get_series("glucose").items} >= {"glucose_serum"}
    hba1c = state.get_series("hba1c").latest
    assert hba1c is not None and hba1c.unit == "%"


def test_hershel_marvin_methotrexate_and_naproxen() -> None:
    state = state_of("Hershel_Marvin")
    (mtx,) = meds_by_code(state, "105586")
    (nap,) = meds_by_code(state, "198014")
    assert mtx.classes == {METHOTREXATE} and mtx.status == "active"
    assert nap.classes == {NSAID} and nap.ingredients == {"naproxen"}
    assert mtx.dose is None  # no dosageInstruction in the bundle: nothing invented
    assert state.get_series("bp_diastolic").latest is not None  # 55284-4 panel


def test_order_sign_example_with_dose_and_rate_object() -> None:
    request = load("cdshooks_order-sign_request_block1")
    ctx = map_order_context(request["context"]["draftOrders"], [], now=NOW)
    assert ctx.drafts and all(d.is_draft for d in ctx.drafts)
    amox = ctx.drafts[0]
    assert amox.reference == "MedicationRequest/smart-MedicationRequest-103"
    assert amox.dose is not None and amox.dose.dose_unit == "mL"
    assert amox.dose.administrations_per_day == 2
    # two strengths in the name: mg per mL unknown, said so
    assert amox.dose.mg_per_day is None and amox.dose.non_mass_unit


def test_medication_prescribe_example_with_stu3_dosage() -> None:
    request = load("cdshooks_medication-prescribe_request_block0")
    ctx = map_order_context(request["context"]["medications"], [], now=NOW)
    azithromycin = next(d for d in ctx.drafts if "Azithromycin" in d.name)
    # STU3 doseQuantity (15 mL) x 20 mg/mL from the drug name, once daily
    assert azithromycin.dose is not None
    assert azithromycin.dose.mg_per_day == pytest.approx(300)
    assert ctx.issues == ()


@pytest.mark.parametrize(
    "name",
    [
        "cdshooks_spec_block1_patient-view-request-with-prefetch",
        "cdshooks_spec_block7_prefetch-filled-with-snipped-keys",
    ],
)
def test_spec_prefetch_examples_do_not_raise(name: str) -> None:
    request = load(name)
    state = map_patient_state(request.get("prefetch") or {}, now=NOW)
    if "snipped" in name:
        # A bare string is reported; a '...' placeholder key is an element nobody reads,
        # ignored like any unknown element, so the Patient's valid gender and birthDate count.
        assert "prefetch:user" in {i.resource for i in state.issues}
        assert state.patient is not None and state.patient.age_years is not None
    else:
        assert state.patient is not None and state.patient.age_years is not None
        assert state.issues == ()
