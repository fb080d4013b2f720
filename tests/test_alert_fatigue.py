"""Alert fatigue: one informational card on chart open; troponin analytes;
never RELIEF-1 beside CAU-4; a one-off injectable benzodiazepine is not pain relief."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
import pytest

from cds_service.guideline import load_engine
from cds_service.model.events import card_recommendations
from fhir_mappings.domain import Dose
from tests.guideline_builders import NOW, PATIENT_ID, condition, dose, meas, med, orders, state
from tests.guideline_cardcheck import check_card
from tests.guideline_run import ids, only, run
from tests.test_rules_monitoring import DM, ck, on_therapy

DEFAULT = load_engine("")


def chart_open(st: Any) -> list[dict[str, Any]]:
    cards = DEFAULT.run(
        "patient-view", st, None, now=NOW, patient_id=PATIENT_ID, draft_resources={}
    )
    for card in cards:
        check_card(card)
    return cards


def test_stable_treated_patient_gets_one_informational_card() -> None:
    st = state(DM, medications=on_therapy(180), measurements=ck((120, 90), (130, 5)))
    [card] = chart_open(st)
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Follow-up on therapy: CK 130 U/L (within normal)")
    assert [r for r, _ in card_recommendations(card)] == ["MON-1", "MON-2", "SKIN-1"]
    for rec in ("MON-1", "MON-2", "SKIN-1"):  # each part keeps its heading and quote
        assert f"**{rec}: " in card["detail"] and f"> Guideline ({rec}):" in card["detail"]
    assert card["source"]["label"].endswith("(MON-1; MON-2; SKIN-1)")


def test_warnings_are_never_folded() -> None:
    meds = on_therapy(180)
    bp = (meas("bp_systolic", 152, 3, "mm[Hg]"), meas("bp_diastolic", 94, 3, "mm[Hg]"))
    cards = chart_open(state(DM, medications=meds, measurements=(*ck((120, 90), (130, 5)), *bp)))
    assert [c["indicator"] for c in cards] == ["warning", "info"]
    assert cards[0]["source"]["topic"]["code"] == "MON-2"


def test_folded_suggestions_are_all_kept() -> None:
    st = state(DM, medications=on_therapy(70), measurements=ck((4000, 69), (150, 40)))
    [card] = chart_open(st)  # CK due (none within 30 days) and physiotherapy
    assert [s["label"] for s in card["suggestions"]] == ["Order CK", "Refer to physiotherapy"]
    assert card["selectionBehavior"] == "any"


# ---- troponins -------------------------------------------------------------------------

SPASM = (condition("spasm"),)


def trop(analyte: str, value: float, days: float, high: float | None) -> Any:
    m = meas("troponin", value, days, unit="ng/L", high=high, rid=f"Observation/{analyte}-{days}")
    return msgspec.structs.replace(m, analyte=analyte)


@pytest.mark.parametrize(
    ("troponins", "cau4"),
    [
        ((trop("troponin_i", 180, 20, 45), trop("troponin_t_hs", 10, 2, 14)), "warning"),
        ((trop("troponin_i_hs", 60, 5, 34),), "warning"),
        ((trop("troponin_t_hs", 80, 2, 14), trop("troponin_i", 5, 2, 45)), None),
        ((trop("troponin_t", 0.5, 2, 0.01),), "info"),  # T raised, no I: said, not assumed
        ((trop("troponin_i", 180, 200, 45),), None),  # outside the 90-day look-back
        ((trop("troponin_i", 180, 2, None),), "info"),  # no range to judge
    ],
)
def test_each_troponin_against_its_own_range(troponins: Any, cau4: str | None) -> None:
    cards = run(
        "order-select",
        state(SPASM, measurements=troponins),
        orders(med("naproxen", "n1", draft=True)),
    )
    got = [c["indicator"] for c in cards if c["source"]["topic"]["code"] == "CAU-4"]
    assert got == ([cau4] if cau4 else [])
    if cau4:
        assert "Troponin T can rise from skeletal muscle" in only(cards, "CAU-4")["detail"]
    # never both: the combination recommended and the NSAID cautioned against
    assert not ({"RELIEF-1", "CAU-4"} <= set(ids(cards)))


def test_relief1_never_recommends_the_combination_with_cardiac_involvement() -> None:
    st = state((*SPASM, condition("cardiac_involvement")))
    cards = run("order-select", st, orders(med("methocarbamol", "r1", draft=True)))
    assert "RELIEF-1" not in ids(cards)


def test_cau4_on_chart_open_for_an_active_nsaid() -> None:
    st = state((*SPASM, condition("cardiac_involvement")), medications=(med("naproxen", "n1"),))
    assert only(run("patient-view", st), "CAU-4")["indicator"] == "warning"
    st = state((*SPASM, condition("cardiac_involvement")), medications=(med("acetaminophen"),))
    assert "CAU-4" not in ids(run("patient-view", st))


# ---- one-off procedural benzodiazepine ------------------------------------------------


def benzo(single: bool, route: str = "intravenous") -> Any:
    d: Dose = dose(2, per_day=4, route=route)
    return replace(med("midazolam", "mz", draft=True, dose_=d), single_dose=single)


@pytest.mark.parametrize(
    ("draft", "indicator", "deletes"),
    [
        (benzo(True), "info", False),
        (benzo(False), "warning", True),
        (benzo(True, route="oral"), "warning", True),  # a single oral dose is not procedural
    ],
)
def test_one_off_injectable_benzodiazepine(draft: Any, indicator: str, deletes: bool) -> None:
    card = only(run("order-select", state(SPASM), orders(draft)), "CAU-2")
    assert card["indicator"] == indicator
    assert ("suggestions" in card) is deletes
    if not deletes:
        assert card["summary"].startswith("If midazolam is used for pain")
