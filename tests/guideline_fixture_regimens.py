"""Dosing scenarios: real regimens, real orders, children, invalid records.

Each principle has one scenario that fires and one that must not. Run
`python -m tests.guideline_fixture_regimens [names...]` to (re)write fixtures/<name>/.
Expected cards are hand-written golden projections, reviewed for clinical sense;
`textIncludes` / `textExcludes` check what the card and its orders say.
"""

from __future__ import annotations

import sys
from typing import Any

from tests.guideline_fixture_builder import (
    PID,
    RXNORM,
    SCENARIOS,
    SCT,
    UCUM,
    Patient,
    Scenario,
    card,
    order_select,
    patient_view,
    scenario,
)
from tests.guideline_fixture_scenarios import STEROID, follow

MR = "MedicationRequest"
SR = "ServiceRequest"
ROUTE = {
    "oral": {"coding": [{"system": SCT, "code": "26643006", "display": "Oral route"}]},
}
# The folded follow-up card of a treated patient (one info card on chart open).
FOLLOW = follow("CK 160 U/L (within normal)", STEROID)
DAILY = (
    "Methotrexate ordered more often than weekly: it is a once-weekly drug, correct the frequency"
)


def child(p: Patient, years: int) -> Patient:
    p.resources[0]["birthDate"] = f"@today-{years}y"
    return p


def raw_med(
    rid: str,
    name: str | None,
    code: str | None,
    *,
    status: str = "active",
    days_ago: int = 10,
    dose: dict[str, Any] | None = None,
    repeat: dict[str, Any] | None = None,
    route: str = "oral",
    dispense: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A MedicationRequest written out in full (timing shapes the builder does not make)."""
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "proposal" if status == "draft" else "order",
        "medicationCodeableConcept": {
            k: v
            for k, v in (
                (
                    "coding",
                    [
                        {
                            k: v
                            for k, v in (("system", RXNORM), ("code", code), ("display", name))
                            if v
                        }
                    ],
                ),
                ("text", name),
            )
            if v and (k != "coding" or code)
        },
        "subject": {"reference": f"Patient/{PID}"},
        "authoredOn": "@now" if status == "draft" else f"@now-{days_ago}d",
    }
    if dose is not None:
        res["dosageInstruction"] = [
            {
                "timing": {"repeat": repeat or {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "route": ROUTE[route],
                "doseAndRate": [{"doseQuantity": dose}],
            }
        ]
    if dispense:
        res["dispenseRequest"] = dispense
    return res


def mg(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "mg", "system": UCUM, "code": "mg"}


def pills(value: float) -> dict[str, Any]:
    """The CDS Hooks Sandbox's dose: UCUM annotation {pill}, no unit (CONFORMANCE.md)."""
    return {"value": value, "system": UCUM, "code": "{pill}"}


def tablets(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "tablet", "system": UCUM, "code": "{tbl}"}


def sandbox_order_select(*drafts: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's Rx View request: draftOrders Bundle WITHOUT type, one selection."""
    request = order_select(*drafts)
    del request["context"]["draftOrders"]["type"]
    return request


# ---- principle 3: methotrexate by the weekly total ----------------------------------


@scenario("is-2-split-dose-over-several-days")
def _mtx_split_days() -> Scenario:
    # 5 mg on Monday, Wednesday and Friday: 15 mg/week, but on three days. Critical; the
    # update keeps the 15 mg/week and puts the three doses on one day.
    mtx = raw_med(
        "draft1",
        "Methotrexate 2.5 MG Oral Tablet",
        "6851",
        status="draft",
        dose=mg(5),
        repeat={"frequency": 1, "period": 1, "periodUnit": "d", "dayOfWeek": ["mon", "wed", "fri"]},
    )
    expected = card(
        "IS-2",
        "critical",
        DAILY,
        [("Change to 3 doses of 5 mg on one day a week", [("update", MR)])],
    )
    expected["textIncludes"] = ["15 mg/week", "the ordered weekly total, 15 mg/week"]
    expected["textExcludes"] = ["? mg", "= **?"]
    return Patient().condition("hypertension"), order_select(mtx), [expected]


@scenario("is-2-split-dose-one-day-ok")
def _mtx_split_one_day() -> Scenario:
    # Three doses of 5 mg, 12 hours apart... within Monday (dayOfWeek + frequency per day):
    # a valid split weekly dose of 15 mg/week. No card for anyone.
    mtx = raw_med(
        "draft1",
        "Methotrexate 2.5 MG Oral Tablet",
        "6851",
        status="draft",
        dose=mg(5),
        repeat={
            "frequency": 3,
            "period": 1,
            "periodUnit": "d",
            "dayOfWeek": ["mon"],
            "when": ["MORN", "AFT", "EVE"],
        },
    )
    return Patient().condition("hypertension"), order_select(mtx), []


@scenario("is-2-daily-bid-keeps-one-days-doses")
def _mtx_bid() -> Scenario:
    # 7.5 mg twice a day every day (105 mg/week): the update keeps one day's doses (15 mg)
    # as the weekly dose, never the single 7.5 mg, and says so.
    mtx = raw_med(
        "draft1",
        "Methotrexate 2.5 MG Oral Tablet",
        "6851",
        status="draft",
        dose=mg(7.5),
        repeat={"frequency": 2, "period": 1, "periodUnit": "d"},
    )
    expected = card(
        "IS-2",
        "critical",
        DAILY,
        [("Change to 2 doses of 7.5 mg on one day a week", [("update", MR)])],
    )
    expected["textIncludes"] = ["105 mg/week", "15 mg/week", "dayOfWeek"]
    return Patient().condition("hypertension"), order_select(mtx), [expected]


# ---- principle 5: durations from what was dispensed ---------------------------------


def _cyclobenzaprine(quantity: int, repeats: int, status: str = "active") -> dict[str, Any]:
    dispense: dict[str, Any] = {"quantity": tablets(quantity)}
    if repeats:
        dispense["numberOfRepeatsAllowed"] = repeats
    return raw_med(
        "med1" if status == "active" else "draft1",
        "Cyclobenzaprine 10 MG Oral Tablet",
        "828348",
        status=status,
        days_ago=5,
        dose=mg(10),
        repeat={"frequency": 3, "period": 1, "periodUnit": "d"},
        dispense=dispense,
    )


@scenario("cau-1-ninety-day-supply")
def _relaxant_90_days() -> Scenario:
    # Dose in mg, quantity in tablets: 30 tablets / (10 mg tid / 10 mg per tablet) = 10 days
    # per fill x (1 + 8 repeats) = 90 days, started 5 days ago: a 90-day supply.
    p = Patient().condition("spasm")
    p.resources.append(_cyclobenzaprine(30, 8))
    expected = card(
        "CAU-1",
        "warning",
        "Cyclobenzaprine supplied for 90 days: muscle relaxants only up to 2-3 weeks (ref 3)",
    )
    expected["textIncludes"] = ["dispense quantity / daily use x fills"]
    expected["textExcludes"] = ["consider stopping", "taper"]
    return p, patient_view(), [expected]


@scenario("cau-1-ten-day-supply-silent")
def _relaxant_10_days() -> Scenario:
    # The same tablets and dose without repeats: 10 days, within the limit. No card.
    p = Patient().condition("spasm")
    p.resources.append(_cyclobenzaprine(30, 0))
    return p, patient_view(), []


# ---- principle 6: only the guideline's words; value-set membership ------------------


@scenario("cau-1-baclofen-is-not-a-muscle-relaxant-here")
def _baclofen() -> Scenario:
    # Baclofen for spasticity, running 200 days: an antispastic, not one of the guideline's
    # short-term muscle relaxants (knowledge.yaml value_set_decisions). No CAU-1.
    p = Patient().condition("spasm")
    p.resources.append(
        raw_med("med1", "Baclofen 10 MG Oral Tablet", "1292", days_ago=200, dose=mg(10))
    )
    return p, patient_view(), []


@scenario("cau-1-running-says-only-the-guideline")
def _relaxant_words() -> Scenario:
    p = Patient().condition("spasm").med("methocarbamol", 30, mg=500, freq=3)
    expected = card(
        "CAU-1",
        "warning",
        "Methocarbamol running 30 days: muscle relaxants only up to 2-3 weeks (ref 3)",
    )
    expected["textIncludes"] = ["up to 2-3 weeks", "This site's limit is 21 days"]
    expected["textExcludes"] = ["consider stopping", "taper", "instead", "alternative"]
    return p, patient_view(), [expected]


# ---- principle 7: children --------------------------------------------------------


@scenario("is-1-child-weight-based-with-specialist-note")
def _child_is1() -> Scenario:
    p = child(Patient(), 12).condition("dermatomyositis").workup().lab("weight", 38, 5)
    expected = card(
        "IS-1",
        "info",
        "Consider prednisone 40 mg/day orally (1 mg/kg/day for 38 kg); paediatric dose: "
        "specialist decision",
        [("Order prednisone 40 mg orally once daily", [("create", MR)])],
    )
    expected["textIncludes"] = ["paediatric dosing is a specialist decision"]
    skin = card(
        "SKIN-1",
        "info",
        "Dermatomyositis features: the guideline lists skin protection as adjunctive care",
    )
    return p, patient_view(), [expected, skin]


@scenario("is-2-child-no-adult-methotrexate-dose")
def _child_is2() -> Scenario:
    p = child(Patient(), 12).condition("polymyositis").workup().lab("weight", 38, 5)
    p.med("prednisone", 10, mg=40)
    expected = card(
        "IS-2",
        "info",
        "Methotrexate with the glucocorticoid: the guideline's 15-20 mg/week is an adult dose; "
        "paediatric dosing is a specialist decision",
    )
    expected["textExcludes"] = ["Order methotrexate 15 mg"]
    return (
        p,
        patient_view(),
        [
            expected,
            FOLLOW,
        ],
    )


@scenario("is-1-adult-gets-fixed-dose")
def _adult_is2() -> Scenario:
    # The same record at 40 years: the adult suggestion stands (must-not for principle 7).
    p = child(Patient(), 40).condition("polymyositis").workup().lab("weight", 38, 5)
    p.med("prednisone", 10, mg=40)
    return (
        p,
        patient_view(),
        [
            card(
                "IS-2",
                "info",
                "Consider adding methotrexate 15 mg subcutaneously once weekly to the "
                "glucocorticoid",
                [("Order methotrexate 15 mg subcutaneously once weekly", [("create", MR)])],
            ),
            FOLLOW,
        ],
    )


# ---- principle 8: evaluate before treating ------------------------------------------


@scenario("is-1-work-up-first-without-ck")
def _workup_first() -> Scenario:
    p = Patient().condition("polymyositis").lab("weight", 70, 3)
    is1 = card(
        "IS-1",
        "info",
        "Work-up first (no CK result in the last 90 days); then prednisone 70 mg/day "
        "(1 mg/kg/day for 70 kg)",
    )
    is1["textExcludes"] = ["Order prednisone"]
    assess = card(
        "ASSESS-1",
        "info",
        "Complete the myositis work-up: 14 item(s) missing",
        [("Order the missing work-up (14)", [("create", SR)] * 14)],
    )
    return p, patient_view(), [assess, is1]


# ---- principle 9: glucocorticoid dose ----------------------------------------------


@scenario("is-1-hydrocortisone-replacement-is-not-first-line")
def _hydrocortisone() -> Scenario:
    # Hydrocortisone 20 mg/day = prednisone 5 mg/day: replacement, not immunosuppression.
    # IS-1 still offers prednisone 1 mg/kg/day; no methotrexate "add-on" suggestion.
    p = Patient().condition("polymyositis").workup().lab("weight", 70, 3)
    p.resources.append(
        raw_med(
            "med1",
            "Hydrocortisone 10 MG Oral Tablet",
            None,
            days_ago=400,
            dose=mg(10),
            repeat={"frequency": 2, "period": 1, "periodUnit": "d"},
        )
    )
    is1 = card(
        "IS-1",
        "info",
        "Consider prednisone 70 mg/day orally (1 mg/kg/day for 70 kg)",
        [("Order prednisone 70 mg orally once daily", [("create", MR)])],
    )
    is1["textIncludes"] = ["prednisone 5 mg/day equivalent", "7.5 mg/day prednisone-equivalent"]
    # Replacement is not immunosuppression: no MON-1 "monitoring on immunosuppression" card.
    mon2 = card(
        "MON-2", "info", "On hydrocortisone: monitor glucose, blood pressure and bone health"
    )
    return p, patient_view(), [is1, mon2]


@scenario("is-1-methylprednisolone-counts-as-first-line")
def _methylpred() -> Scenario:
    # Methylprednisolone 48 mg/day = prednisone 60 mg/day: first-line therapy is on record.
    p = Patient().condition("polymyositis").workup().lab("weight", 70, 3)
    p.resources.append(raw_med("med1", "methylPREDNISolone 4 MG Oral Tablet", "6902", dose=mg(48)))
    is2 = card(
        "IS-2",
        "info",
        "Consider adding methotrexate 15 mg subcutaneously once weekly to the glucocorticoid",
        [("Order methotrexate 15 mg subcutaneously once weekly", [("create", MR)])],
    )
    is2["textIncludes"] = ["= prednisone 60 mg/day equivalent"]
    return (
        p,
        patient_view(),
        [
            is2,
            FOLLOW,
        ],
    )


# ---- principle 10: the dose actually suggested --------------------------------------


@scenario("is-1-capped-states-mg-per-kg")
def _capped() -> Scenario:
    p = Patient().condition("polymyositis").workup().lab("weight", 110, 3)
    expected = card(
        "IS-1",
        "info",
        "Consider prednisone 80 mg/day orally (= 0.73 mg/kg/day for 110 kg, capped "
        "by local policy)",
        [("Order prednisone 80 mg orally once daily", [("create", MR)])],
    )
    # the created order's own text states it too
    expected["textIncludes"] = ["prednisone 80 mg orally once daily (80 mg/day = 0.73 mg/kg/day"]
    return p, patient_view(), [expected]


@scenario("is-1-uncapped-states-1-mg-per-kg")
def _uncapped() -> Scenario:
    p = Patient().condition("polymyositis").workup().lab("weight", 60, 3)
    expected = card(
        "IS-1",
        "info",
        "Consider prednisone 60 mg/day orally (1 mg/kg/day for 60 kg)",
        [("Order prednisone 60 mg orally once daily", [("create", MR)])],
    )
    expected["textExcludes"] = ["capped by local policy"]
    return p, patient_view(), [expected]


# ---- principle 13: orders as the CDS Hooks Sandbox sends them -----------------------


@scenario("sandbox-prednisone-pill-above-1-mg-per-kg")
def _sandbox_pred_over() -> Scenario:
    # Rx View: "predniSONE 5 MG Oral Tablet", 15 {pill} daily = 75 mg/day for 60 kg.
    p = Patient().condition("polymyositis").workup().lab("weight", 60, 3)
    d = raw_med("draft1", "predniSONE 5 MG Oral Tablet", "312617", status="draft", dose=pills(15))
    expected = card("IS-1", "warning", "Prednisone 75 mg/day exceeds 1 mg/kg/day: review the dose")
    expected["textExcludes"] = ["? mg"]
    return p, sandbox_order_select(d), [expected]


@scenario("sandbox-prednisone-pill-within-dose")
def _sandbox_pred_ok() -> Scenario:
    p = Patient().condition("polymyositis").workup().lab("weight", 60, 3)
    d = raw_med("draft1", "predniSONE 5 MG Oral Tablet", "312617", status="draft", dose=pills(12))
    return p, sandbox_order_select(d), []


@scenario("sandbox-methotrexate-pill-daily")
def _sandbox_mtx_daily() -> Scenario:
    # "Methotrexate 10 MG Oral Tablet", 1 {pill} once daily: 10 mg every day.
    d = raw_med("draft1", "Methotrexate 10 MG Oral Tablet", "105586", status="draft", dose=pills(1))
    # The rest of the sandbox's shape: reasonCode as an object, a boundsPeriod, a supply.
    d["reasonCode"] = {
        "coding": [{"system": SCT, "code": "396230008", "display": "Dermatomyositis"}]
    }
    d["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {
        "start": "@today",
        "end": "@today+14d",
    }
    d["dispenseRequest"] = {"numberOfRepeatsAllowed": 0, "quantity": pills(14)}
    expected = card("IS-2", "critical", DAILY, [("Change to 10 mg once weekly", [("update", MR)])])
    expected["textIncludes"] = ["70 mg/week"]
    expected["textExcludes"] = ["? mg"]
    return Patient().condition("hypertension"), sandbox_order_select(d), [expected]


@scenario("sandbox-methotrexate-pill-unknown-strength")
def _sandbox_mtx_unknown() -> Scenario:
    # A bare ingredient code with {pill}: the strength is unknown, said so, never "? mg".
    d = raw_med(
        "draft1",
        "methotrexate",
        "6851",
        status="draft",
        dose=pills(4),
        repeat={"frequency": 1, "period": 1, "periodUnit": "wk"},
    )
    expected = card(
        "IS-2",
        "info",
        "Methotrexate order has no computable weekly dose: confirm it is once weekly",
    )
    expected["textIncludes"] = ["dose unit '{pill}' is not a mass and no matching strength"]
    expected["textExcludes"] = ["? mg"]
    return Patient().condition("hypertension"), sandbox_order_select(d), [expected]


@scenario("sandbox-methotrexate-code-only-weekly")
def _sandbox_mtx_code_only() -> Scenario:
    # Only the RxNorm product code (105586, Methotrexate 10 MG Oral Tablet): the strength
    # comes from the code; 2 {pill} once weekly = 20 mg/week, checked and fine. No card.
    d = raw_med(
        "draft1",
        None,
        "105586",
        status="draft",
        dose=pills(2),
        repeat={"frequency": 1, "period": 1, "periodUnit": "wk"},
    )
    return Patient().condition("hypertension"), sandbox_order_select(d), []


@scenario("sandbox-draft-without-medication")
def _sandbox_no_drug() -> Scenario:
    # The first call of Rx View: the tab is open, nothing picked yet. No card, no error.
    d = {
        "resourceType": "MedicationRequest",
        "id": "draft1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PID}"},
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": pills(1)}],
            }
        ],
    }
    p = Patient().condition("polymyositis").workup().lab("weight", 60, 3)
    return p, sandbox_order_select(d), []


# ---- principle 14: invalid is not absent ---------------------------------------------


def _condition(rid: str, code: Any, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": code,
        "subject": {"reference": f"Patient/{PID}"},
        **extra,
    }


DM_CODE = {
    "coding": [{"system": SCT, "code": "396230008", "display": "Dermatomyositis"}],
    "text": "Dermatomyositis",
}
SCOPE_SUMMARY = (
    "A diagnosis record could not be used (invalid data): guideline checks based on it were not run"
)


@scenario("scope-1-string-code-condition")
def _string_code() -> Scenario:
    # `code` as a string where a CodeableConcept belongs: the only diagnosis, unusable. The
    # answer says so (warning) instead of an empty, reassuring card list.
    p = Patient().lab("weight", 60, 3)
    p.resources.append(_condition("cond-bad", "Dermatomyositis"))
    expected = card("SCOPE-1", "warning", SCOPE_SUMMARY)
    expected["textIncludes"] = ["Condition/cond-bad", "dermatomyositis", "NOT evaluated"]
    return p, patient_view(), [expected]


@scenario("scope-1-impossible-date-beside-valid-diagnosis")
def _impossible_date() -> Scenario:
    # A dermatomyositis record with onset on 30 February, beside a valid polymyositis one:
    # the valid record still scopes the patient; the unusable one is named (info).
    p = Patient().condition("polymyositis").workup().lab("weight", 60, 3)
    p.resources.append(_condition("cond-bad", DM_CODE, onsetDateTime="2023-02-30"))
    expected = card("SCOPE-1", "info", SCOPE_SUMMARY)
    expected["textIncludes"] = ["Condition/cond-bad: invalid R4: onsetDateTime"]
    is1 = card(
        "IS-1",
        "info",
        "Consider prednisone 60 mg/day orally (1 mg/kg/day for 60 kg)",
        [("Order prednisone 60 mg orally once daily", [("create", MR)])],
    )
    return p, patient_view(), [expected, is1]


@scenario("scope-1-invalid-unrelated-condition-silent")
def _unrelated_invalid() -> Scenario:
    # An invalid hypertension record does not decide the guideline's scope: no card.
    p = Patient()
    p.resources.append(
        _condition(
            "cond-bad",
            {"coding": [{"system": SCT, "code": "38341003", "display": "Hypertensive disorder"}]},
            onsetDateTime="2023-02-30",
        )
    )
    return p, patient_view(), []


NAMES = [
    name
    for name in SCENARIOS
    if SCENARIOS[name].__module__ == __name__  # this module's scenarios only
]


if __name__ == "__main__":
    from tests.guideline_fixture_scenarios import write

    write(sys.argv[1:] or NAMES)
