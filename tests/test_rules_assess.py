"""ASSESS-1: the initial work-up before immunosuppression."""

from __future__ import annotations

from pathlib import Path

from cds_service.guideline import load_engine
from tests.guideline_builders import NOW, condition, dose, meas, med, orders, state
from tests.guideline_run import actions, ids, only, run

DM = (condition("dermatomyositis"),)
ALL_KINDS = (
    "ck",
    "aldolase",
    "ast",
    "alt",
    "ldh",
    "esr",
    "crp",
    "anti_pmscl",
    "anti_u1rnp",
    "anti_la",
    "anti_ro",
    "anti_sm",
    "troponin",
    "ecg",
)


def test_assess1_lists_present_results_and_orders_each_missing_item() -> None:
    st = state(DM, measurements=(meas("ck", 4200, 3), meas("crp", 12, 3, unit="mg/L")))
    card = only(run("patient-view", st), "ASSESS-1")
    assert card["indicator"] == "info"
    assert "12 item(s) missing" in card["summary"]
    assert "Creatine kinase (CK): 4200 U/L (2026-11-22)" in card["detail"]
    created = actions(card)
    assert len(created) == 12
    codes = {a["resource"]["code"]["coding"][0]["code"] for a in created}
    assert {"1761-6", "1920-8", "1742-6", "14804-9", "4537-7", "10839-9", "29303009"} <= codes
    assert "2157-6" not in codes and "1988-5" not in codes
    assert all(a["resource"]["resourceType"] == "ServiceRequest" for a in created)


def test_assess1_result_older_than_lookback_counts_as_missing() -> None:
    st = state(DM, measurements=(meas("ck", 4200, 120),))
    card = only(run("patient-view", st), "ASSESS-1")
    assert "14 item(s) missing" in card["summary"]


def test_assess1_silent_when_complete_or_on_therapy_or_out_of_scope() -> None:
    complete = tuple(meas(k, 1, 5) for k in ALL_KINDS)
    assert "ASSESS-1" not in ids(run("patient-view", state(DM, measurements=complete)))
    treated = state(DM, medications=(med("prednisone", dose_=dose(60)),))
    assert "ASSESS-1" not in ids(run("patient-view", treated))
    assert run("patient-view", state((condition("spasm"),))) == []


def test_assess1_ordering_immunosuppression_without_any_ck_warns() -> None:
    draft = med("prednisone", "pd1", draft=True, dose_=dose(60))
    card = only(run("order-select", state(DM), orders(draft)), "ASSESS-1")
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("No CK on record")


def test_assess1_ordering_something_else_is_silent() -> None:
    draft = med("acetaminophen", "a1", draft=True)
    assert "ASSESS-1" not in ids(run("order-select", state(DM), orders(draft)))


def test_assess1_labs_unavailable_says_so_without_ordering() -> None:
    card = only(run("patient-view", state(DM, unavailable=("labs",))), "ASSESS-1")
    assert "could not be retrieved" in card["summary"]
    assert "suggestions" not in card
    assert card["extension"]["org.cds-myopathy.provenance"]["unavailable"] == ["labs"]


def test_assess1_lookback_is_site_policy(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("assessment_lookback_days: 200\n")
    engine = load_engine(str(path))
    st = state(DM, measurements=(meas("ck", 4200, 120),))
    cards = engine.run("patient-view", st, None, now=NOW, patient_id="p1", draft_resources={})
    card = next(c for c in cards if c["source"]["topic"]["code"] == "ASSESS-1")
    assert "13 item(s) missing" in card["summary"]
    assert "`assessment_lookback_days` = 200 days" in card["detail"]
