"""REF-1, PT-1, MON-1, MON-2, SKIN-1: follow-up rules on domain objects."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
import pytest

from fhir_mappings.domain import Coding
from tests.guideline_builders import condition, dose, meas, med, state
from tests.guideline_run import actions, ids, only, run

DM = (condition("dermatomyositis"),)
PM = (condition("polymyositis"),)


def on_therapy(days: float = 42) -> tuple[Any, ...]:
    return (
        med("prednisone", "pred", dose_=dose(60), authored_days_ago=days),
        med(
            "methotrexate",
            "mtx",
            dose_=dose(15, interval_days=7, route="subcutaneous"),
            authored_days_ago=days,
        ),
    )


def ck(*points: tuple[float, float], high: float | None = 170) -> tuple[Any, ...]:
    return tuple(meas("ck", v, d, high=high) for v, d in points)


def test_ref1_ck_above_normal_after_weeks_of_therapy_lists_options_for_dm() -> None:
    st = state(DM, medications=on_therapy(), measurements=ck((5000, 40), (4000, 5)))
    card = only(run("patient-view", st), "REF-1")
    assert card["indicator"] == "warning"
    assert "inadequate response" in card["summary"] and "23.5x ULN" in card["summary"]
    options = card["detail"].split("ordered for this patient:\n")[1]
    assert options.startswith("1. Consider IVIG")
    assert "- 2026-11-20: CK 4000 U/L (-20 % vs previous)" in card["detail"]
    assert "20% below the peak" in card["detail"]
    assert "Upper limit of normal: 170 U/L (the result's reference range)" in card["detail"]


def test_ref1_rising_ck_puts_jak_inhibitor_first_without_skin_features() -> None:
    st = state(PM, medications=on_therapy(), measurements=ck((300, 30), (900, 3)))
    card = only(run("patient-view", st), "REF-1")
    options = card["detail"].split("ordered for this patient:\n")[1]
    assert options.startswith("1. JAK inhibitors")


@pytest.mark.parametrize(
    ("meds", "points"),
    [
        (on_therapy(14), ((5000, 13), (3000, 2))),  # not yet 4 weeks
        (on_therapy(), ((5000, 40), (150, 2))),  # normalised
        (on_therapy()[:1], ((5000, 40), (3000, 2))),  # no steroid-sparing agent
        (on_therapy(), ()),  # no CK at all: MON-1 asks for one instead
    ],
)
def test_ref1_silent(meds: Any, points: Any) -> None:
    cards = run("patient-view", state(PM, medications=meds, measurements=ck(*points)))
    assert "REF-1" not in ids(cards)


def test_ref1_uses_site_default_uln_without_reference_range() -> None:
    st = state(PM, medications=on_therapy(), measurements=ck((500, 40), (450, 2), high=None))
    card = only(run("patient-view", st), "REF-1")
    assert "200 U/L (site-policy default)" in card["detail"]
    assert "ck_upper_limit_default" in card["detail"]


def test_pt1_ck_normalised_suggests_physiotherapy_referral() -> None:
    st = state(PM, medications=on_therapy(), measurements=ck((4000, 60), (150, 2)))
    card = only(run("patient-view", st), "PT-1")
    [create] = actions(card)
    coding = create["resource"]["code"]["coding"][0]
    assert (coding["system"], coding["code"]) == ("http://snomed.info/sct", "306170007")
    assert "CK back within normal (150 U/L, upper limit 170)" in card["summary"]
    assert "controlled" not in card["summary"]


def test_pt1_ck_fallen_by_half_from_peak_counts_as_controlled() -> None:
    st = state(PM, measurements=ck((4000, 60), (1900, 2)))
    card = only(run("patient-view", st), "PT-1")
    # Still above normal: the card says what was measured, never "inflammation controlled".
    assert card["summary"].startswith("CK 1900 U/L, 52% below its peak but above normal")
    assert "controlled" not in card["summary"]
    assert "peak 4000 U/L" in card["detail"] and "local policy" in card["detail"]


@pytest.mark.parametrize(
    "extra",
    [
        {"measurements": ck((4000, 60), (3000, 2))},  # still inflamed
        {
            "measurements": ck((4000, 60), (150, 2)),
            "service_requests": (Coding("http://snomed.info/sct", "306170007"),),
        },
        {"measurements": ()},  # no CK: cannot judge control
    ],
)
def test_pt1_silent(extra: dict[str, Any]) -> None:
    assert "PT-1" not in ids(run("patient-view", state(PM, **extra)))


def test_mon1_shows_trend_and_orders_ck_when_none_recent() -> None:
    st = state(PM, medications=on_therapy(), measurements=ck((900, 80), (400, 45)))
    card = only(run("patient-view", st), "MON-1")
    assert card["indicator"] == "info"
    assert "CK due" in card["summary"]
    [create] = actions(card)
    assert create["resource"]["code"]["coding"][0]["code"] == "2157-6"
    assert "muscle strength" in card["detail"]


def test_mon1_rising_ck_warns_when_not_refractory_yet() -> None:
    st = state(PM, medications=on_therapy(10), measurements=ck((300, 9), (600, 2)))
    card = only(run("patient-view", st), "MON-1")
    assert card["indicator"] == "warning" and "rising" in card["summary"]
    assert "suggestions" not in card


def test_mon1_rising_ck_defers_to_refractory_card() -> None:
    st = state(PM, medications=on_therapy(), measurements=ck((300, 9), (600, 2)))
    cards = run("patient-view", st)
    assert only(cards, "MON-1")["indicator"] == "info"
    assert only(cards, "REF-1")["indicator"] == "warning"


def test_mon1_silent_without_immunosuppression() -> None:
    assert "MON-1" not in ids(run("patient-view", state(PM, measurements=ck((300, 2)))))


def test_mon2_warns_on_high_hba1c_and_bp_with_policy_named() -> None:
    st = state(
        PM,
        medications=on_therapy(),
        measurements=(
            meas("hba1c", 7.1, 20, unit="%"),
            meas("bp_systolic", 152, 3, "mm[Hg]"),
            meas("bp_diastolic", 84, 3, "mm[Hg]"),
            meas("glucose", 140, 3, "mg/dL"),
        ),
    )
    card = only(run("patient-view", st), "MON-2")
    assert card["indicator"] == "warning"
    assert "HbA1c 7.1 %" in card["summary"] and "Systolic BP 152 mmHg" in card["summary"]
    assert "Glucose" not in card["summary"]
    assert "`hba1c_warning_percent` = 6.5 %" in card["detail"]
    assert "Osteoporosis" in card["detail"]


def test_mon2_missing_values_are_named_and_info() -> None:
    st = state((condition("spasm"),), medications=(med("prednisone", dose_=dose(20)),))
    card = only(run("patient-view", st), "MON-2")
    assert card["indicator"] == "info"
    assert "Not found within 365 days (local policy): HbA1c, Glucose" in card["detail"]


def test_mon2_glucose_in_mmol_is_converted() -> None:
    st = state(
        PM,
        medications=(med("prednisone", dose_=dose(20)),),
        measurements=(meas("glucose", 12.0, 2, unit="mmol/L"),),
    )
    assert only(run("patient-view", st), "MON-2")["indicator"] == "warning"


def test_mon2_silent_without_glucocorticoid() -> None:
    assert "MON-2" not in ids(run("patient-view", state(PM)))


def test_skin1_dermatomyositis_text_only() -> None:
    card = only(run("patient-view", state(DM)), "SKIN-1")
    assert "suggestions" not in card and "skin protection" in card["summary"]
    assert "SKIN-1" not in ids(run("patient-view", state(PM)))


def test_skin1_calcinosis_with_myopathy() -> None:
    card = only(run("patient-view", state((*PM, condition("calcinosis")))), "SKIN-1")
    assert "calcinosis" in card["summary"]


def test_pt1_needs_inflammation_shown_first() -> None:
    # CK never above its upper limit: "controlled" cannot be claimed.
    st = state(PM, medications=on_therapy(), measurements=ck((160, 30), (120, 2)))
    assert "PT-1" not in ids(run("patient-view", st))


def test_pt1_silent_while_refractory_card_fires() -> None:
    st = state(DM, medications=on_therapy(), measurements=ck((5000, 40), (4000, 5)))
    cards = run("patient-view", st)
    assert "REF-1" in ids(cards) and "PT-1" not in ids(cards)


def test_ref1_options_follow_guideline_order_without_features() -> None:
    st = state(PM, medications=on_therapy(), measurements=ck((5000, 40), (4000, 5)))
    options = only(run("patient-view", st), "REF-1")["detail"].split("this patient:\n")[1]
    assert options.splitlines()[:4] == [
        "1. Consider IVIG, especially helpful when skin features are prominent",
        "2. Consider rituximab (may take up to 26 weeks to show effect)",
        "3. For severe disease with major organ involvement, consider cyclophosphamide",
        "4. JAK inhibitors can be considered for progressive disease",
    ]


def test_unusable_ck_is_named_in_the_trend() -> None:
    bad = msgspec.structs.replace(
        meas("ck", None, 1, rid="Observation/ck-bad"), unusable_reason="unit 'xyz'"
    )
    st = state(PM, medications=on_therapy(10), measurements=(*ck((300, 9)), bad))
    card = only(run("patient-view", st), "MON-1")
    assert "Not usable: Observation/ck-bad (unit 'xyz')" in card["detail"]


def test_refuted_myopathy_puts_nobody_in_scope() -> None:
    refuted = replace(condition("dermatomyositis"), verification_status="refuted")
    assert run("patient-view", state((refuted,), medications=on_therapy())) == []
