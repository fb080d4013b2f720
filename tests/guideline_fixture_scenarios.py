"""The guideline scenarios: per recommendation, fires / does not fire / missing data / scope.

Run `python -m tests.guideline_fixture_scenarios [names...]` to (re)write fixtures/<name>/.
Expected cards are hand-written golden projections, reviewed for clinical sense.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from tests.guideline_fixture_builder import (
    ROOT,
    SCENARIOS,
    Patient,
    Scenario,
    card,
    draft,
    order_select,
    patient_view,
    scenario,
    with_failed_prefetch,
)

MR = "MedicationRequest"
SR = "ServiceRequest"
BENZO = "Remove the diazepam order: benzodiazepines show no pain benefit here (ref 6)"
ASSESS_WARN = "No CK on record before immunosuppression: order the myositis work-up first"
PV_IS2 = "Consider adding methotrexate 15 mg subcutaneously once weekly to the glucocorticoid"
MON2_INFO = "On prednisone: monitor glucose, blood pressure and bone health"
PT1 = "Acute inflammation controlled (CK): refer for a physiotherapist-monitored exercise programme"
RELIEF_ONE = "For severe spasm, NSAID + muscle relaxant beats either alone (watch drowsiness)"
RELIEF_COMBO = (
    "NSAID + muscle relaxant combination: more effective, more drowsiness; relaxant <= 2-3 weeks"
)
SKIN_DM = "Dermatomyositis features: the guideline lists skin protection as adjunctive care"


# Scenarios whose request pins a prefetch with one key failed (an OperationOutcome). They are
# fixtures like the others (fetch-equivalence suites skip pinned prefetch), and
# tests/test_guideline_unavailable.py also checks that the cards name the missing input.
UNAVAILABLE: dict[str, Callable[[], Scenario]] = {}


def unavailable_scenario(name: str) -> Callable[[Callable[[], Scenario]], Callable[[], Scenario]]:
    def register(fn: Callable[[], Scenario]) -> Callable[[], Scenario]:
        UNAVAILABLE[name] = fn
        return scenario(name)(fn)

    return register


def assess(n: int) -> dict[str, object]:
    return card(
        "ASSESS-1",
        "info",
        f"Complete the myositis work-up: {n} item(s) missing",
        [(f"Order the missing work-up ({n})", [("create", SR)] * n)],
    )


def is1(mg: int, kg: str, capped: str = "") -> dict[str, object]:
    how = (
        f"= {capped} mg/kg/day for {kg} kg, capped by local policy"
        if capped
        else (f"1 mg/kg/day for {kg} kg")
    )
    return card(
        "IS-1",
        "info",
        f"Consider prednisone {mg} mg/day orally ({how})",
        [(f"Order prednisone {mg} mg orally once daily", [("create", MR)])],
    )


def is2_start() -> dict[str, object]:
    return card(
        "IS-2",
        "info",
        PV_IS2,
        [("Order methotrexate 15 mg subcutaneously once weekly", [("create", MR)])],
    )


def mon1_ok(ck: str) -> dict[str, object]:
    return card("MON-1", "info", f"Monitoring: CK {ck} U/L; target low-normal range")


def mon1_due(ck: str) -> dict[str, object]:
    return card(
        "MON-1",
        "info",
        f"CK due: last CK {ck} U/L; serial CK is the guideline's monitoring target",
        [("Order CK", [("create", SR)])],
    )


def mon2() -> dict[str, object]:
    return card("MON-2", "info", MON2_INFO)


STEROID = "steroid effects: glucose, BP, bone"
ORDER_CK = [("Order CK", [("create", SR)])]
REFER = [("Refer to physiotherapy", [("create", SR)])]


def follow(
    *labels: str,
    ids: tuple[str, ...] = ("MON-1", "MON-2"),
    suggestions: list[tuple[str, list[tuple[str, str | None]]]] | None = None,
) -> dict[str, object]:
    """The folded follow-up card (one informational card on chart open, against alert fatigue)."""
    out = card(ids[0], "info", "Follow-up on therapy: " + "; ".join(labels), suggestions)
    out["folded"] = list(ids)
    return out


def on_therapy(p: Patient, days: int = 42) -> Patient:
    """Prednisone 60 mg daily + methotrexate 15 mg s.c. weekly, both started `days` ago."""
    return p.med("prednisone", days, mg=60).med(
        "methotrexate", days, mg=15, unit="wk", route="subcutaneous"
    )


# ---- ASSESS-1 -------------------------------------------------------------------------


@scenario("assess-1-fires")
def _assess_fires() -> Scenario:
    p = Patient().condition("polymyositis").lab("ck", 4200, 3, high=170).lab("weight", 64, 3)
    return p, patient_view(), [assess(13), is1(65, "64")]


@scenario("assess-1-fires-when-ordering-without-ck")
def _assess_ordering() -> Scenario:
    p = Patient().condition("polymyositis").lab("weight", 70, 3)
    return (
        p,
        order_select(draft("prednisone", mg=70)),
        [
            card(
                "ASSESS-1",
                "warning",
                ASSESS_WARN,
                [("Order the missing work-up (14)", [("create", SR)] * 14)],
            )
        ],
    )


@scenario("assess-1-complete")
def _assess_complete() -> Scenario:
    p = Patient().condition("polymyositis").workup().lab("weight", 70, 3)
    return p, patient_view(), [is1(70, "70")]


@unavailable_scenario("assess-1-missing-data")
def _assess_missing() -> Scenario:
    p = Patient().condition("polymyositis").lab("weight", 70, 3)
    request = with_failed_prefetch(patient_view(), p, "labs")
    return (
        p,
        request,
        [
            card(
                "ASSESS-1",
                "info",
                "Check the initial myositis work-up: lab results could not be retrieved",
            ),
            # Evaluate before treating: the labs are unknown, so the
            # prednisone card says the work-up comes first and offers no one-click start.
            card(
                "IS-1",
                "info",
                "Work-up first (lab results could not be retrieved); then prednisone 70 mg/day "
                "(1 mg/kg/day for 70 kg)",
            ),
        ],
    )


@scenario("assess-1-out-of-scope")
def _assess_scope() -> Scenario:
    return Patient().condition("spasm").lab("weight", 70, 3), patient_view(), []


# ---- RELIEF-1 ------------------------------------------------------------------------


@scenario("relief-1-fires")
def _relief_fires() -> Scenario:
    return (
        Patient().condition("spasm"),
        order_select(
            draft("cyclobenzaprine", "mr1", mg=10, freq=3, supply_days=14),
            draft("naproxen", "nsaid1", mg=500, freq=2, supply_days=10),
        ),
        [card("RELIEF-1", "info", RELIEF_COMBO)],
    )


@scenario("relief-1-not-relief-drug")
def _relief_other() -> Scenario:
    return Patient().condition("spasm"), order_select(draft("acetaminophen", mg=500)), []


@scenario("relief-1-missing-duration")
def _relief_missing() -> Scenario:
    # No duration stated: the card says so in its detail instead of guessing one.
    return (
        Patient().condition("spasm"),
        order_select(draft("cyclobenzaprine", mg=10, freq=3)),
        [card("RELIEF-1", "info", RELIEF_ONE)],
    )


@scenario("relief-1-out-of-scope")
def _relief_scope() -> Scenario:
    return (
        Patient().condition("hypertension"),
        order_select(draft("naproxen", mg=500, freq=2, supply_days=10)),
        [],
    )


# ---- IS-1 ----------------------------------------------------------------------------


@scenario("is-1-fires")
def _is1_fires() -> Scenario:
    p = Patient().condition("polymyositis").workup().lab("weight", 72.4, 10)
    return p, patient_view(), [is1(70, "72.4")]


@scenario("is-1-fires-capped")
def _is1_capped() -> Scenario:
    p = Patient().condition("polymyositis").workup().lab("weight", 104, 10)
    # The cap applies: the card states the mg/kg actually suggested, not the uncapped mg/kg.
    return p, patient_view(), [is1(80, "104", capped="0.77")]


@scenario("is-1-already-on-prednisone")
def _is1_on() -> Scenario:
    p = Patient().condition("polymyositis").lab("weight", 70, 3).lab("ck", 900, 5, high=170)
    p.med("prednisone", 10, mg=70)
    return p, patient_view(), [is2_start(), follow("CK 900 U/L (5.3x upper limit)", STEROID)]


@scenario("is-1-missing-weight")
def _is1_no_weight() -> Scenario:
    p = Patient().condition("polymyositis").workup()
    return (
        p,
        patient_view(),
        [
            card(
                "IS-1",
                "info",
                "Consider prednisone 1 mg/kg/day; record a current weight to compute the dose",
            )
        ],
    )


@scenario("is-1-out-of-scope")
def _is1_scope() -> Scenario:
    # A back spasm is no indication for prednisone: no IS-1 card.
    return Patient().condition("spasm").lab("weight", 70, 3), patient_view(), []


@scenario("is-1-order-above-1-mg-per-kg")
def _is1_over() -> Scenario:
    p = Patient().condition("polymyositis").workup().lab("weight", 60, 5)
    return (
        p,
        order_select(draft("prednisone", mg=100)),
        [card("IS-1", "warning", "Prednisone 100 mg/day exceeds 1 mg/kg/day: review the dose")],
    )


@scenario("is-1-order-within-dose")
def _is1_ok() -> Scenario:
    p = Patient().condition("polymyositis").workup().lab("weight", 60, 5)
    return p, order_select(draft("prednisone", mg=60)), []


@scenario("is-1-order-missing-weight")
def _is1_order_no_weight() -> Scenario:
    p = Patient().condition("polymyositis").workup()
    return (
        p,
        order_select(draft("prednisone", mg=60)),
        [
            card(
                "IS-1",
                "info",
                "Prednisone 60 mg/day not checked against 1 mg/kg/day: no usable weight",
            )
        ],
    )


# ---- IS-2 ----------------------------------------------------------------------------


@scenario("is-2-fires")
def _is2_fires() -> Scenario:
    p = Patient().condition("polymyositis").lab("ck", 900, 5, high=170)
    p.med("prednisone", 10, mg=60)
    return p, patient_view(), [is2_start(), follow("CK 900 U/L (5.3x upper limit)", STEROID)]


@scenario("is-2-daily-methotrexate-any-patient")
def _is2_daily() -> Scenario:
    # Everyone: no myopathy or spasm diagnosis, still a critical safety check.
    p = Patient().condition("hypertension")
    return (
        p,
        order_select(draft("methotrexate", mg=10)),
        [
            card(
                "IS-2",
                "critical",
                "Methotrexate ordered more often than weekly: it is a once-weekly drug, correct "
                "the frequency",
                [("Change to 10 mg once weekly", [("update", MR)])],
            )
        ],
    )


@scenario("is-2-above-40-mg-week")
def _is2_over() -> Scenario:
    return (
        Patient().condition("hypertension"),
        order_select(draft("methotrexate", mg=50, unit="wk", route="subcutaneous")),
        [
            card(
                "IS-2",
                "critical",
                "Methotrexate 50 mg/week is above the 40 mg/week maximum: reduce the dose",
            )
        ],
    )


@scenario("is-2-weekly-subcutaneous-ok")
def _is2_ok() -> Scenario:
    p = Patient().condition("polymyositis").workup()
    return p, order_select(draft("methotrexate", mg=15, unit="wk", route="subcutaneous")), []


@scenario("is-2-oral-low-start")
def _is2_oral() -> Scenario:
    p = Patient().condition("polymyositis").workup()
    return (
        p,
        order_select(draft("methotrexate", mg=10, unit="wk")),
        [
            card(
                "IS-2",
                "info",
                "Methotrexate: the guideline starts 15-20 mg/week, preferably subcutaneously",
            )
        ],
    )


@scenario("is-2-missing-dosage")
def _is2_missing() -> Scenario:
    return (
        Patient().condition("hypertension"),
        order_select(draft("methotrexate")),
        [
            card(
                "IS-2",
                "info",
                "Methotrexate order has no computable weekly dose: confirm it is once weekly",
            )
        ],
    )


@scenario("is-2-out-of-scope")
def _is2_scope() -> Scenario:
    # Spasm only, on prednisone: no methotrexate suggestion; steroid monitoring still applies.
    p = Patient().condition("spasm").med("prednisone", 10, mg=20)
    return p, patient_view(), [mon2()]


# ---- IS-3 ----------------------------------------------------------------------------


@scenario("is-3-fires-when-ordering")
def _is3_order() -> Scenario:
    p = Patient().condition("polymyositis").workup().allergy("methotrexate")
    return (
        p,
        order_select(draft("methotrexate", mg=15, unit="wk", route="subcutaneous")),
        [
            card(
                "IS-3",
                "warning",
                "Methotrexate intolerance is recorded: consider mycophenolate mofetil instead",
                [("Remove the methotrexate draft order", [("delete", "MedicationRequest/draft1")])],
            )
        ],
    )


@scenario("is-3-fires-stopped-methotrexate")
def _is3_view() -> Scenario:
    p = Patient().condition("polymyositis").lab("ck", 900, 5, high=170)
    p.med("prednisone", 30, mg=60)
    p.med(
        "methotrexate",
        60,
        status="stopped",
        mg=15,
        unit="wk",
        route="subcutaneous",
        reason="Intolerance: persistent nausea and raised transaminases",
    )
    return (
        p,
        patient_view(),
        [
            card(
                "IS-3",
                "info",
                "Methotrexate not tolerated: the guideline suggests considering mycophenolate "
                "mofetil",
            ),
            follow("CK 900 U/L (5.3x upper limit)", STEROID),
        ],
    )


@scenario("is-3-not-fired-on-mmf")
def _is3_mmf() -> Scenario:
    p = Patient().condition("polymyositis").lab("ck", 900, 5, high=170).allergy("methotrexate")
    p.med("prednisone", 10, mg=60).med("mycophenolate", 10, mg=1000, freq=2)
    return p, patient_view(), [follow("CK 900 U/L (5.3x upper limit)", STEROID)]


@scenario("is-3-missing-stop-reason")
def _is3_missing() -> Scenario:
    # A stopped methotrexate without a reason is not taken as intolerance.
    p = Patient().condition("polymyositis").lab("ck", 900, 5, high=170)
    p.med("prednisone", 30, mg=60)
    p.med("methotrexate", 60, status="stopped", mg=15, unit="wk", route="subcutaneous")
    return p, patient_view(), [is2_start(), follow("CK 900 U/L (5.3x upper limit)", STEROID)]


@scenario("is-3-out-of-scope")
def _is3_scope() -> Scenario:
    p = Patient().condition("spasm").allergy("methotrexate")
    return p, order_select(draft("methotrexate", mg=15, unit="wk", route="subcutaneous")), []


# ---- REF-1 ---------------------------------------------------------------------------


@scenario("ref-1-fires")
def _ref_fires() -> Scenario:
    p = on_therapy(Patient().condition("dermatomyositis"))
    # 5000 -> 4000 U/L: 20 % below the peak, 23.5x the upper limit: inadequate response.
    p.lab("ck", 5000, 40, high=170).lab("ck", 4000, 5, high=170)
    return (
        p,
        patient_view(),
        [
            card(
                "REF-1",
                "warning",
                "CK inadequate response after 6 weeks of combined therapy (CK 4000 U/L, 23.5x "
                "ULN): consider refractory options",
            ),
            follow(
                "CK 4000 U/L (23.5x upper limit)",
                STEROID,
                "skin protection",
                ids=("MON-1", "MON-2", "SKIN-1"),
            ),
        ],
    )


@scenario("ref-1-responding")
def _ref_responding() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"))
    p.lab("ck", 4000, 40, high=170).lab("ck", 150, 5, high=170)
    return (
        p,
        patient_view(),
        [
            follow(
                "CK 150 U/L (within normal)",
                STEROID,
                "physiotherapy referral",
                ids=("MON-1", "MON-2", "PT-1"),
                suggestions=REFER,
            )
        ],
    )


@scenario("ref-1-too-early")
def _ref_early() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"), days=14)
    p.lab("ck", 5000, 13, high=170).lab("ck", 3000, 2, high=170)
    return p, patient_view(), [follow("CK 3000 U/L (17.6x upper limit)", STEROID)]


@scenario("ref-1-missing-ck")
def _ref_missing() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"))
    return (
        p,
        patient_view(),
        [follow("no CK on record", STEROID, suggestions=ORDER_CK)],
    )


@scenario("ref-1-out-of-scope")
def _ref_scope() -> Scenario:
    p = on_therapy(Patient().condition("spasm"))
    p.lab("ck", 5000, 40, high=170).lab("ck", 3000, 5, high=170)
    return p, patient_view(), [mon2()]


# ---- PT-1 ----------------------------------------------------------------------------


@scenario("pt-1-fires")
def _pt_fires() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"), days=20)
    p.lab("ck", 6000, 19, high=170).lab("ck", 2400, 3, high=170)
    return (
        p,
        patient_view(),
        [
            follow(
                "CK 2400 U/L (14.1x upper limit)",
                STEROID,
                "physiotherapy referral",
                ids=("MON-1", "MON-2", "PT-1"),
                suggestions=REFER,
            )
        ],
    )


@scenario("pt-1-already-referred")
def _pt_referred() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"), days=20).physio_referral()
    p.lab("ck", 6000, 19, high=170).lab("ck", 2400, 3, high=170)
    return p, patient_view(), [follow("CK 2400 U/L (14.1x upper limit)", STEROID)]


@scenario("pt-1-not-controlled")
def _pt_active() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"), days=20)
    p.lab("ck", 6000, 19, high=170).lab("ck", 5000, 3, high=170)
    return p, patient_view(), [follow("CK 5000 U/L (29.4x upper limit)", STEROID)]


@scenario("pt-1-missing-ck")
def _pt_missing() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"), days=20)
    return (
        p,
        patient_view(),
        [follow("no CK on record", STEROID, suggestions=ORDER_CK)],
    )


@scenario("pt-1-out-of-scope")
def _pt_scope() -> Scenario:
    p = Patient().condition("spasm").lab("ck", 6000, 19, high=170).lab("ck", 150, 3, high=170)
    return p, patient_view(), []


# ---- SKIN-1 --------------------------------------------------------------------------


@scenario("skin-1-fires")
def _skin_fires() -> Scenario:
    p = on_therapy(Patient().condition("dermatomyositis"), days=10)
    p.lab("ck", 3000, 9, high=170).lab("ck", 2000, 2, high=170)
    ids = ("MON-1", "MON-2", "SKIN-1")
    return (
        p,
        patient_view(),
        [follow("CK 2000 U/L (11.8x upper limit)", STEROID, "skin protection", ids=ids)],
    )


@scenario("skin-1-fires-calcinosis")
def _skin_calcinosis() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis").condition("calcinosis"), days=10)
    p.lab("ck", 3000, 9, high=170).lab("ck", 2000, 2, high=170)
    return (
        p,
        patient_view(),
        [
            follow(
                "CK 2000 U/L (11.8x upper limit)",
                STEROID,
                "skin protection, calcinosis",
                ids=("MON-1", "MON-2", "SKIN-1"),
            )
        ],
    )


@scenario("skin-1-no-skin-features")
def _skin_none() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"), days=10)
    p.lab("ck", 3000, 9, high=170).lab("ck", 2000, 2, high=170)
    return p, patient_view(), [follow("CK 2000 U/L (11.8x upper limit)", STEROID)]


@scenario("skin-1-resolved-condition")
def _skin_resolved() -> Scenario:
    return Patient().condition("dermatomyositis", status="resolved"), patient_view(), []


@scenario("skin-1-out-of-scope")
def _skin_scope() -> Scenario:
    # Calcinosis without an inflammatory myopathy is outside the guideline's scope.
    return Patient().condition("calcinosis"), patient_view(), []


# ---- MON-1 ---------------------------------------------------------------------------


@scenario("mon-1-fires-ck-due")
def _mon1_due() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"), days=20)
    p.lab("ck", 900, 45, high=170)
    return p, patient_view(), [follow("CK due (last CK 900 U/L)", STEROID, suggestions=ORDER_CK)]


@scenario("mon-1-fires-rising")
def _mon1_rising() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"), days=10)
    p.lab("ck", 300, 9, high=170).lab("ck", 600, 2, high=170)
    return (
        p,
        patient_view(),
        [
            card(
                "MON-1",
                "warning",
                "CK rising on immunosuppression (CK 600 U/L, +100% vs previous, 3.5x upper "
                "limit): review disease activity",
            ),
            mon2(),
        ],
    )


@scenario("mon-1-not-on-therapy")
def _mon1_none() -> Scenario:
    p = Patient().condition("polymyositis").workup().lab("weight", 70, 3)
    return p, patient_view(), [is1(70, "70")]


@unavailable_scenario("mon-1-missing-labs")
def _mon1_missing() -> Scenario:
    p = on_therapy(Patient().condition("polymyositis"), days=20).lab("ck", 900, 5, high=170)
    request = with_failed_prefetch(patient_view(), p, "labs")
    return (
        p,
        request,
        [follow("CK results could not be retrieved", STEROID)],
    )


@scenario("mon-1-out-of-scope")
def _mon1_scope() -> Scenario:
    p = (
        Patient()
        .condition("hypertension")
        .med("methotrexate", 20, mg=15, unit="wk", route="subcutaneous")
    )
    return p, patient_view(), []


# ---- MON-2 ---------------------------------------------------------------------------


@scenario("mon-2-fires-warning")
def _mon2_warn() -> Scenario:
    p = Patient().condition("spasm").med("prednisone", 30, mg=20)
    p.lab("hba1c", 7.1, 20).lab("glucose", 140, 3).blood_pressure(152, 94, 3)
    return (
        p,
        patient_view(),
        [
            card(
                "MON-2",
                "warning",
                "On prednisone: HbA1c 7.1 %, Systolic BP 152 mmHg, Diastolic BP 94 mmHg: review "
                "for steroid hyperglycemia/hypertension",
            )
        ],
    )


@scenario("mon-2-fires-info")
def _mon2_info() -> Scenario:
    p = Patient().condition("spasm").med("prednisone", 30, mg=20)
    p.lab("hba1c", 5.4, 20).lab("glucose", 96, 3).blood_pressure(118, 76, 3)
    return p, patient_view(), [mon2()]


@unavailable_scenario("mon-2-missing-data")
def _mon2_missing() -> Scenario:
    p = Patient().condition("spasm").med("prednisone", 30, mg=20)
    request = with_failed_prefetch(patient_view(), p, "vitals")
    return p, request, [mon2()]


@scenario("mon-2-no-values")
def _mon2_no_values() -> Scenario:
    # Nothing measured: the card lists what was not found instead of staying silent.
    return Patient().condition("spasm").med("prednisone", 30, mg=20), patient_view(), [mon2()]


@scenario("mon-2-no-glucocorticoid")
def _mon2_none() -> Scenario:
    p = Patient().condition("spasm").lab("hba1c", 8.0, 20).blood_pressure(160, 95, 3)
    return p, patient_view(), []


@scenario("mon-2-out-of-scope")
def _mon2_scope() -> Scenario:
    p = Patient().condition("hypertension").med("prednisone", 30, mg=20).lab("hba1c", 9.0, 20)
    return p, patient_view(), []


# ---- CAU-1 ---------------------------------------------------------------------------


@scenario("cau-1-fires")
def _cau1_fires() -> Scenario:
    request = order_select(draft("cyclobenzaprine", "mr1", tablets=90, freq=3, supply_days=30))
    return (
        Patient().condition("spasm"),
        request,
        [
            card(
                "CAU-1",
                "warning",
                "Limit the cyclobenzaprine course to 21 days: muscle relaxants only short term "
                "(ref 3)",
                [("Shorten the cyclobenzaprine course to 21 days", [("update", MR)])],
            ),
            card("RELIEF-1", "info", RELIEF_ONE),
        ],
    )


@scenario("cau-1-short-course")
def _cau1_short() -> Scenario:
    request = order_select(draft("cyclobenzaprine", "mr1", mg=10, freq=3, supply_days=14))
    return Patient().condition("spasm"), request, [card("RELIEF-1", "info", RELIEF_ONE)]


@scenario("cau-1-missing-duration")
def _cau1_missing() -> Scenario:
    request = order_select(draft("cyclobenzaprine", "mr1", mg=10, freq=3))
    return Patient().condition("spasm"), request, [card("RELIEF-1", "info", RELIEF_ONE)]


@scenario("cau-1-running-too-long")
def _cau1_running() -> Scenario:
    p = Patient().condition("spasm").med("methocarbamol", 35, mg=1000, freq=3)
    return (
        p,
        patient_view(),
        [
            card(
                "CAU-1",
                "warning",
                "Methocarbamol running 35 days: muscle relaxants only up to 2-3 weeks (ref 3)",
            )
        ],
    )


@scenario("cau-1-out-of-scope")
def _cau1_scope() -> Scenario:
    request = order_select(draft("cyclobenzaprine", "mr1", mg=10, freq=3, supply_days=30))
    return Patient().condition("hypertension"), request, []


# ---- CAU-2 ---------------------------------------------------------------------------


@scenario("cau-2-fires")
def _cau2_fires() -> Scenario:
    return (
        Patient().condition("spasm"),
        order_select(draft("diazepam", mg=5)),
        [
            card(
                "CAU-2",
                "warning",
                BENZO,
                [("Remove the diazepam draft order", [("delete", "MedicationRequest/draft1")])],
            )
        ],
    )


@scenario("cau-2-patient-view-active")
def _cau2_view() -> Scenario:
    p = Patient().condition("spasm").med("lorazepam", 20, mg=1, freq=2)
    return (
        p,
        patient_view(),
        [
            card(
                "CAU-2",
                "warning",
                "Review lorazepam: benzodiazepines show no pain benefit here (ref 6)",
            )
        ],
    )


@scenario("cau-2-not-benzodiazepine")
def _cau2_other() -> Scenario:
    return Patient().condition("spasm"), order_select(draft("acetaminophen", mg=500)), []


@scenario("cau-2-out-of-scope")
def _cau2_scope() -> Scenario:
    return Patient().condition("hypertension"), order_select(draft("diazepam", mg=5)), []


@scenario("cau-2-missing-data")
def _cau2_missing() -> Scenario:
    # A sandbox-style draft with no medication: nothing to classify, so nothing is claimed.
    bare = draft("diazepam", mg=5)
    del bare["medicationCodeableConcept"]
    return Patient().condition("spasm"), order_select(bare), []


@scenario("cau-2-not-selected")
def _cau2_context() -> Scenario:
    # The benzodiazepine draft is not among the selections: context only, no card.
    return (
        Patient().condition("spasm"),
        order_select(
            draft("diazepam", "draft1", mg=5),
            draft("acetaminophen", "draft2", mg=500),
            selected=("MedicationRequest/draft2",),
        ),
        [],
    )


# ---- CAU-3 ---------------------------------------------------------------------------


@scenario("cau-3-fires")
def _cau3_fires() -> Scenario:
    return (
        Patient().condition("spasm"),
        order_select(draft("naproxen", mg=500, freq=2, supply_days=30)),
        [
            card(
                "CAU-3",
                "warning",
                "Naproxen intended beyond 14 days: chronic NSAIDs may impair muscle regeneration",
            ),
            card("RELIEF-1", "info", RELIEF_ONE),
        ],
    )


@scenario("cau-3-short-course")
def _cau3_short() -> Scenario:
    return (
        Patient().condition("spasm"),
        order_select(draft("naproxen", mg=500, freq=2, supply_days=7)),
        [card("RELIEF-1", "info", RELIEF_ONE)],
    )


@scenario("cau-3-missing-duration")
def _cau3_missing() -> Scenario:
    return (
        Patient().condition("spasm"),
        order_select(draft("naproxen", mg=500, freq=2)),
        [card("RELIEF-1", "info", RELIEF_ONE)],
    )


@scenario("cau-3-running-long")
def _cau3_running() -> Scenario:
    p = Patient().condition("spasm").med("ibuprofen", 40, mg=400, freq=3)
    return (
        p,
        patient_view(),
        [
            card(
                "CAU-3",
                "info",
                "Ibuprofen running 40 days: chronic NSAIDs may impair muscle regeneration (ref 7)",
            )
        ],
    )


@scenario("cau-3-out-of-scope")
def _cau3_scope() -> Scenario:
    p = Patient().condition("hypertension").med("ibuprofen", 40, mg=400, freq=3)
    return p, patient_view(), []


# ---- CAU-4 ---------------------------------------------------------------------------


@scenario("cau-4-fires-myocarditis")
def _cau4_fires() -> Scenario:
    p = Patient().condition("dermatomyositis").condition("myocarditis")
    return (
        p,
        order_select(draft("naproxen", mg=500, freq=2, supply_days=7)),
        [
            card(
                "CAU-4",
                "warning",
                "Cardiac involvement: reconsider naproxen, on the cardiac-caution list",
            ),
        ],
    )


@scenario("cau-4-fires-troponin")
def _cau4_troponin() -> Scenario:
    p = Patient().condition("spasm").lab("troponin", 180, 2, high=45)
    return (
        p,
        order_select(draft("cyclobenzaprine", mg=10, freq=3, supply_days=7)),
        [
            card(
                "CAU-4",
                "warning",
                "Cardiac involvement: reconsider cyclobenzaprine, on the cardiac-caution list",
            ),
        ],
    )


@scenario("cau-4-no-cardiac-involvement")
def _cau4_none() -> Scenario:
    p = Patient().condition("spasm").lab("troponin", 5, 2, high=45)
    return (
        p,
        order_select(draft("naproxen", mg=500, freq=2, supply_days=7)),
        [card("RELIEF-1", "info", RELIEF_ONE)],
    )


@scenario("cau-4-missing-troponin-range")
def _cau4_missing() -> Scenario:
    # A troponin without a reference range cannot show cardiac involvement: said, not assumed.
    p = Patient().condition("spasm").lab("troponin", 180, 2)
    return (
        p,
        order_select(draft("naproxen", mg=500, freq=2, supply_days=7)),
        [
            card(
                "CAU-4",
                "info",
                "Check cardiac involvement before naproxen: the troponin has no reference range",
            ),
        ],
    )


@scenario("cau-4-out-of-scope")
def _cau4_scope() -> Scenario:
    p = Patient().condition("myocarditis")
    return p, order_select(draft("naproxen", mg=500, freq=2, supply_days=7)), []


# ---- response is not refractoriness ----------------------------------------------------


@scenario("ref-1-normal-uptick")
def _ref_uptick() -> Scenario:
    # CK fell into the normal range and moves within it (+25 %, below the upper limit): a
    # response. No REF-1, no "CK rising", and PT-1 is not held back.
    p = on_therapy(Patient().condition("polymyositis"), days=70)
    p.lab("ck", 4000, 69, high=170).lab("ck", 120, 30, high=170).lab("ck", 150, 5, high=170)
    return (
        p,
        patient_view(),
        [
            follow(
                "CK 150 U/L (within normal)",
                STEROID,
                "physiotherapy referral",
                ids=("MON-1", "MON-2", "PT-1"),
                suggestions=REFER,
            )
        ],
    )


@scenario("ref-1-fires-rising-above-normal")
def _ref_rising() -> Scenario:
    # Back to normal, then up to 3.5x the upper limit: rising, so no longer a response.
    p = on_therapy(Patient().condition("polymyositis"), days=70)
    p.lab("ck", 4000, 69, high=170).lab("ck", 150, 40, high=170).lab("ck", 600, 5, high=170)
    return (
        p,
        patient_view(),
        [
            card(
                "REF-1",
                "warning",
                "CK rising after 10 weeks of combined therapy (CK 600 U/L, 3.5x ULN): consider "
                "refractory options",
            ),
            follow("CK 600 U/L (3.5x upper limit)", STEROID),
        ],
    )


@scenario("ref-1-partial-response")
def _ref_partial() -> Scenario:
    # 5000 -> 1200 U/L: 76 % below the peak (site policy: 50 %), not rising: a response,
    # though still above normal. No escalation; PT-1 says what was measured.
    p = on_therapy(Patient().condition("polymyositis"))
    p.lab("ck", 5000, 40, high=170).lab("ck", 1200, 5, high=170)
    return (
        p,
        patient_view(),
        [
            follow(
                "CK 1200 U/L (7.1x upper limit)",
                STEROID,
                "physiotherapy referral",
                ids=("MON-1", "MON-2", "PT-1"),
                suggestions=REFER,
            )
        ],
    )


# ---- PT-1 claims match the data --------------------------------------------------------


@scenario("pt-1-fires-normal-ck")
def _pt_normal() -> Scenario:
    # Alone on the chart (no therapy to fold with): the summary states the CK measured.
    p = Patient().condition("polymyositis").workup(days_ago=60, ck=3000).lab("weight", 70, 3)
    p.lab("ck", 150, 3, high=170)
    return (
        p,
        patient_view(),
        [
            is1(70, "70"),
            card(
                "PT-1",
                "info",
                "CK back within normal (150 U/L, upper limit 170): refer for a "
                "physiotherapist-monitored exercise programme",
                REFER,
            ),
        ],
    )


# ---- treatment history counts ----------------------------------------------------------


@scenario("ref-1-rituximab-in-window")
def _ref_rituximab() -> Scenario:
    # Two rituximab infusions 8 and 6 weeks ago (administrations, no active order): inside the
    # up-to-26-week window; the card says so and does not propose rituximab again.
    p = on_therapy(Patient().condition("polymyositis"), days=70)
    p.lab("ck", 5000, 69, high=170).lab("ck", 4500, 5, high=170)
    p.administration("rituximab", 56).administration("rituximab", 42)
    return (
        p,
        patient_view(),
        [
            card(
                "REF-1",
                "info",
                "CK inadequate response after 10 weeks of combined therapy (CK 4500 U/L, 26.5x "
                "ULN): rituximab still inside its 26-week window",
            ),
            follow("CK 4500 U/L (26.5x upper limit)", STEROID),
        ],
    )


@scenario("ref-1-tried-options")
def _ref_tried() -> Scenario:
    # IVIG (home-infusion statement, completed), cyclophosphamide (stopped order), rituximab
    # (given 36 weeks ago): named as tried; only the JAK inhibitor is left to list.
    p = on_therapy(Patient().condition("dermatomyositis"), days=70)
    p.lab("ck", 5000, 69, high=170).lab("ck", 4500, 5, high=170)
    p.statement("ivig", "completed", started=300, ended=200)
    p.med("cyclophosphamide", 250, status="stopped")
    p.administration("rituximab", 250)
    return (
        p,
        patient_view(),
        [
            card(
                "REF-1",
                "warning",
                "CK inadequate response after 10 weeks of combined therapy (CK 4500 U/L, 26.5x "
                "ULN): consider refractory options",
            ),
            follow(
                "CK 4500 U/L (26.5x upper limit)",
                STEROID,
                "skin protection",
                ids=("MON-1", "MON-2", "SKIN-1"),
            ),
        ],
    )


@scenario("ref-1-on-jak-home-medication")
def _ref_jak() -> Scenario:
    # A JAK inhibitor taken at home (active MedicationStatement, no order here): already
    # escalated, so no refractory card.
    p = on_therapy(Patient().condition("polymyositis"), days=70)
    p.lab("ck", 5000, 69, high=170).lab("ck", 4500, 5, high=170)
    p.statement("tofacitinib", "active", started=30)
    return p, patient_view(), [follow("CK 4500 U/L (26.5x upper limit)", STEROID)]


# ---- troponins are separate analytes ---------------------------------------------------

CAU4_NAPROXEN = "Cardiac involvement: reconsider naproxen, on the cardiac-caution list"


@scenario("cau-4-fires-troponin-i-earlier")
def _cau4_earlier() -> Scenario:
    # Troponin I raised 20 days ago; the latest troponin (T, hs) is normal. Any cardiac-specific
    # troponin above its own range within the look-back counts, not the latest of a mixed series.
    p = Patient().condition("spasm").lab("troponin", 180, 20, high=45)
    p.lab("troponin_t_hs", 10, 2, high=14)
    order = order_select(draft("naproxen", mg=500, freq=2, supply_days=7))
    return p, order, [card("CAU-4", "warning", CAU4_NAPROXEN)]


@scenario("cau-4-troponin-t-raised-i-normal")
def _cau4_t_only_i_normal() -> Scenario:
    # Troponin T raised (skeletal muscle in myositis), troponin I normal: no cardiac caution.
    p = Patient().condition("spasm").lab("troponin_t_hs", 80, 2, high=14)
    p.lab("troponin", 5, 2, high=45)
    order = order_select(draft("naproxen", mg=500, freq=2, supply_days=7))
    return p, order, [card("RELIEF-1", "info", RELIEF_ONE)]


@scenario("cau-4-troponin-t-without-troponin-i")
def _cau4_t_no_i() -> Scenario:
    # Troponin T raised and no troponin I: cardiac involvement neither shown nor ruled out.
    p = Patient().condition("spasm").lab("troponin_t_hs", 80, 2, high=14)
    order = order_select(draft("naproxen", mg=500, freq=2, supply_days=7))
    return (
        p,
        order,
        [
            card(
                "CAU-4",
                "info",
                "Check cardiac involvement before naproxen: troponin T raised, no troponin I on "
                "record",
            )
        ],
    )


@scenario("cau-4-troponin-outside-lookback")
def _cau4_old() -> Scenario:
    # A raised troponin I 200 days ago is outside the 90-day look-back (site policy).
    p = Patient().condition("spasm").lab("troponin", 180, 200, high=45)
    order = order_select(draft("naproxen", mg=500, freq=2, supply_days=7))
    return p, order, [card("RELIEF-1", "info", RELIEF_ONE)]


@scenario("cau-4-patient-view-active-nsaid")
def _cau4_view() -> Scenario:
    p = Patient().condition("spasm").condition("myocarditis").med("naproxen", 5, mg=500, freq=2)
    return p, patient_view(), [card("CAU-4", "warning", CAU4_NAPROXEN)]


@scenario("cau-4-patient-view-no-caution-drug")
def _cau4_view_none() -> Scenario:
    p = Patient().condition("spasm").condition("myocarditis").med("acetaminophen", 5, mg=500)
    return p, patient_view(), []


# ---- alert fatigue ---------------------------------------------------------------------


@scenario("stable-treated-one-info-card")
def _stable() -> Scenario:
    # Six months on prednisone + methotrexate, CK normal throughout, dermatomyositis: the
    # monitoring, steroid-effects and skin cards arrive as one informational card.
    p = on_therapy(Patient().condition("dermatomyositis"), days=180)
    p.lab("ck", 120, 90, high=170).lab("ck", 130, 5, high=170)
    return (
        p,
        patient_view(),
        [
            follow(
                "CK 130 U/L (within normal)",
                STEROID,
                "skin protection",
                ids=("MON-1", "MON-2", "SKIN-1"),
            )
        ],
    )


@scenario("stable-treated-warning-not-folded")
def _stable_warning() -> Scenario:
    # A warning (blood pressure at the steroid-effects threshold) is never folded away.
    p = on_therapy(Patient().condition("dermatomyositis"), days=180)
    p.lab("ck", 120, 90, high=170).lab("ck", 130, 5, high=170).blood_pressure(152, 94, 3)
    return (
        p,
        patient_view(),
        [
            card(
                "MON-2",
                "warning",
                "On prednisone: Systolic BP 152 mmHg, Diastolic BP 94 mmHg: review for steroid "
                "hyperglycemia/hypertension",
            ),
            follow("CK 130 U/L (within normal)", "skin protection", ids=("MON-1", "SKIN-1")),
        ],
    )


@scenario("cau-2-procedural-midazolam")
def _cau2_procedural() -> Scenario:
    # One injectable dose (procedural sedation): not pain relief; "if used for pain", no delete.
    p = Patient().condition("spasm")
    order = order_select(draft("midazolam", mg=2, route="intravenous", count=1))
    return (
        p,
        order,
        [
            card(
                "CAU-2",
                "info",
                "If midazolam is used for pain: benzodiazepines show no pain benefit here (ref 6)",
            )
        ],
    )


@scenario("cau-2-repeated-midazolam")
def _cau2_repeated() -> Scenario:
    # Repeated injectable doses are not a one-off: the usual caution with its delete.
    p = Patient().condition("spasm")
    order = order_select(draft("midazolam", mg=2, freq=4, route="intravenous"))
    return (
        p,
        order,
        [
            card(
                "CAU-2",
                "warning",
                "Remove the midazolam order: benzodiazepines show no pain benefit here (ref 6)",
                [
                    (
                        "Remove the midazolam draft order",
                        [("delete", "MedicationRequest/draft1")],
                    )
                ],
            )
        ],
    )


def write(names: list[str]) -> None:
    for name, build in SCENARIOS.items():
        if names and name not in names:
            continue
        patient, request, expected = build()
        folder = ROOT / name
        folder.mkdir(parents=True, exist_ok=True)
        for filename, doc in (
            ("patient.json", patient.bundle()),
            ("request.json", request),
            ("expected.json", expected),
        ):
            (folder / filename).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(sys.argv[1:])
