"""Response is not refractoriness; treatment history counts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
import pytest

from cds_service.guideline import GuidelineEngine
from cds_service.guideline.knowledge import apply_site_policy, load_knowledge
from tests.guideline_builders import NOW, PATIENT_ID, ago, condition, meas, state
from tests.guideline_builders import med as _med
from tests.guideline_run import ids, only, run
from tests.test_rules_monitoring import PM, ck, on_therapy


def med(*args: Any, **kw: Any) -> Any:
    return _med(*args, **kw)


def given(drug: str, days_ago: float, source: str = "MedicationAdministration", **kw: Any) -> Any:
    """A refractory drug on record as given `days_ago` (administration by default)."""
    m = _med(drug, f"{drug[:4]}-{days_ago:g}", status=kw.pop("status", "completed"), **kw)
    kind = source
    return replace(
        m,
        source=kind,
        reference=f"{kind}/{m.resource_id}",
        period_start=ago(days_ago),
        period_end=ago(days_ago),
    )


# (CK points (value, days ago), REF-1 fires, MON-1 indicator, PT-1 fires)
TRAJECTORIES = [
    pytest.param(((4000, 69), (120, 30), (150, 5)), False, "info", True, id="normal-uptick"),
    pytest.param(((4000, 69), (150, 40), (600, 5)), True, "info", False, id="rising-again"),
    pytest.param(((5000, 40), (1200, 5)), False, "info", True, id="76pct-below-peak"),
    pytest.param(((5000, 40), (4000, 5)), True, "info", False, id="20pct-below-peak"),
    pytest.param(((160, 69), (180, 5)), True, "info", False, id="newly-above-not-falling"),
    pytest.param(((170, 40), (165, 20), (169, 5)), False, "info", False, id="normal-throughout"),
    # +13 % after a 93 % fall: within day-to-day variation (ck_rise_fraction 0.25), not rising
    pytest.param(((5000, 69), (300, 30), (340, 5)), False, "info", True, id="small-bump-above"),
    pytest.param(((5000, 69), (300, 30), (400, 5)), True, "info", False, id="33pct-rise-above"),
]


@pytest.mark.parametrize(("points", "ref1", "mon1", "pt1"), TRAJECTORIES)
def test_ck_trajectories(points: Any, ref1: bool, mon1: str, pt1: bool) -> None:
    cards = run("patient-view", state(PM, medications=on_therapy(70), measurements=ck(*points)))
    assert ("REF-1" in ids(cards)) is ref1
    assert only(cards, "MON-1")["indicator"] == mon1
    assert ("PT-1" in ids(cards)) is pt1
    for card in cards:  # never claims control while CK is above its upper limit
        assert "inflammation controlled" not in card["summary"].lower()


def test_the_fall_that_counts_as_response_is_site_policy() -> None:
    strict = GuidelineEngine(
        apply_site_policy(load_knowledge(), {"ck_fall_fraction": 0.9, "patient_view_fold_info": 0})
    )
    st = state(PM, medications=on_therapy(70), measurements=ck((5000, 40), (1200, 5)))
    cards = strict.run("patient-view", st, None, now=NOW, patient_id=PATIENT_ID, draft_resources={})
    card = only(cards, "REF-1")
    assert "76% below the peak" in card["detail"] and "at least 90% below a peak" in card["detail"]
    assert "`ck_fall_fraction` = 0.9" in card["detail"]


def ref1(*history: Any) -> dict[str, Any]:
    meds = (*on_therapy(70), *history)
    st = state(PM, medications=meds, measurements=ck((5000, 69), (4500, 5)))
    return only(run("patient-view", st), "REF-1")


def test_rituximab_inside_its_window_is_not_proposed_again() -> None:
    card = ref1(given("rituximab", 56), given("rituximab", 42))
    assert card["indicator"] == "info"
    assert "rituximab still inside its 26-week window" in card["summary"]
    assert "6 weeks ago" in card["detail"] and "not proposed again" in card["detail"]
    assert "Consider rituximab" not in card["detail"].split("> Guideline")[0]


def test_rituximab_beyond_26_weeks_is_named_as_tried() -> None:
    card = ref1(given("rituximab", 200))
    assert card["indicator"] == "warning"
    tried = card["detail"].split("Already tried (not listed again):\n")[1]
    assert tried.startswith("- rituximab:")
    assert "Consider rituximab" not in card["detail"].split("> Guideline")[0]


def test_completed_order_counts_like_an_administration() -> None:
    order = replace(_med("rituximab", "rtx", status="completed"), authored_on=ago(30))
    card = ref1(order)
    assert "rituximab still inside its 26-week window" in card["summary"]


def test_tried_ivig_statement_and_stopped_cyclophosphamide_are_named() -> None:
    card = ref1(
        given("immune globulin", 150, source="MedicationStatement"),
        given("cyclophosphamide", 120, source="MedicationRequest", status="stopped"),
    )
    detail = card["detail"]
    assert "- IVIG: Immune globulin product (completed, taken until" in detail
    assert "- cyclophosphamide: Cyclophosphamide product (stopped, ordered" in detail
    options = detail.split("ordered for this patient:\n")[1].split("\n\n")[0].splitlines()
    assert [o[:20] for o in options] == ["1. Consider rituxima", "2. JAK inhibitors ca"]


def test_an_active_escalation_silences_ref1() -> None:
    meds = (*on_therapy(70), _med("tofacitinib", "jak", authored_days_ago=20))
    st = state(PM, medications=meds, measurements=ck((5000, 69), (4500, 5)))
    assert "REF-1" not in ids(run("patient-view", st))


def test_undated_rituximab_says_the_window_cannot_be_told() -> None:
    m = replace(_med("rituximab", "rtx", status="completed"), authored_on=None)
    card = ref1(m)
    assert "without a date" in card["detail"]


def test_cardiac_troponin_i_earlier_in_the_look_back_counts_for_cyclophosphamide() -> None:
    troponins = (
        msgspec.structs.replace(
            meas("troponin", 180, 20, unit="ng/L", high=45), analyte="troponin_i"
        ),
        msgspec.structs.replace(
            meas("troponin", 5, 2, unit="ng/L", high=14), analyte="troponin_t_hs"
        ),
    )
    st = state(
        (condition("polymyositis"),),
        medications=on_therapy(70),
        measurements=(*ck((5000, 69), (4500, 5)), *troponins),
    )
    options = only(run("patient-view", st), "REF-1")["detail"].split("this patient:\n")[1]
    assert options.startswith("1. For severe disease with major organ involvement")


@pytest.mark.parametrize("status", ["draft", "cancelled"])
def test_an_order_never_given_is_not_treatment_history(status: str) -> None:
    card = ref1(replace(_med("rituximab", "rtx", status=status), authored_on=ago(30)))
    assert card["indicator"] == "warning" and "Already tried" not in card["detail"]
    assert "Consider rituximab" in card["detail"].split("> Guideline")[0]
