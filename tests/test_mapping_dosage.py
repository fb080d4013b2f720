"""Dosage -> Dose and dispense/timing -> Course: never guess, say what is unknown."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import map_order_context, map_patient_state
from fhir_mappings.domain import Dose, Medication
from tests.mapping_builders import NOW, SNOMED, bundle, med_request, rx

MTX = rx("105586", "Methotrexate 10 MG Oral Tablet")
PRED = rx("312617", "predniSONE 5 MG Oral Tablet")
MIDAZOLAM = rx("311700", "midazolam 1 MG/ML Injectable Solution")


def mg(value: float, unit: str = "mg") -> dict[str, Any]:
    return {"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit}}]}


def repeat(**kw: Any) -> dict[str, Any]:
    return {"timing": {"repeat": kw}}


def code(c: str) -> dict[str, Any]:
    return {
        "timing": {
            "code": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation",
                        "code": c,
                    }
                ]
            }
        }
    }


def one(concept: dict[str, Any], dosage: dict[str, Any], **extra: Any) -> Medication:
    state = map_patient_state({"m": med_request(concept, dosage=[dosage], **extra)}, now=NOW)
    assert len(state.medications) == 1, state.issues
    return state.medications[0]


def dose_of(concept: dict[str, Any], dosage: dict[str, Any]) -> Dose:
    d = one(concept, dosage).dose
    assert d is not None
    return d


WEEKLY = {"frequency": 1, "period": 1, "periodUnit": "wk"}
DAILY = {"frequency": 1, "period": 1, "periodUnit": "d"}

# (id, drug, dosage, mg/administration, administrations/day, mg/week, interval days)
DOSES: list[
    tuple[
        str, dict[str, Any], dict[str, Any], float | None, float | None, float | None, float | None
    ]
] = [
    ("mtx 15 mg weekly", MTX, {**mg(15), **repeat(**WEEKLY)}, 15, 1 / 7, 15, 7),
    ("mtx 15 mg daily (error)", MTX, {**mg(15), **repeat(**DAILY)}, 15, 1, 105, 1),
    ("timing code WK", MTX, {**mg(20), **code("WK")}, 20, 1 / 7, 20, 7),
    ("timing code QD", MTX, {**mg(10), **code("QD")}, 10, 1, 70, 1),
    ("timing code QOD", PRED, {**mg(10), **code("QOD")}, 10, 0.5, 35, 2),
    ("BID code", PRED, {**mg(5), **code("BID")}, 5, 2, 70, 0.5),
    (
        "mtx 2.5 MG tablets x6 weekly",
        rx("105585", "Methotrexate 2.5 MG Oral Tablet"),
        {**mg(6, "{tbl}"), **repeat(**WEEKLY)},
        15,
        1 / 7,
        15,
        7,
    ),
    ("tablets x strength from name", PRED, {**mg(2, "TAB"), **repeat(**DAILY)}, 10, 1, 70, 1),
    ("g to mg", PRED, {**mg(0.06, "g"), **repeat(**DAILY)}, 60, 1, 420, 1),
    (
        "every 8 h",
        PRED,
        {**mg(5), **repeat(frequency=1, period=8, periodUnit="h")},
        5,
        3,
        105,
        1 / 3,
    ),
    (
        "frequencyMax upper bound",
        PRED,
        {**mg(5), **repeat(frequency=1, frequencyMax=3, period=1, periodUnit="d")},
        5,
        3,
        105,
        1 / 3,
    ),
    (
        "dayOfWeek once a week",
        MTX,
        {**mg(15), **repeat(**DAILY, dayOfWeek=["mon"])},
        15,
        1 / 7,
        15,
        7,
    ),
    ("dayOfWeek alone", MTX, {**mg(15), **repeat(dayOfWeek=["mon", "thu"])}, 15, 2 / 7, 30, 3.5),
    (
        "timeOfDay twice",
        PRED,
        {**mg(5), **repeat(timeOfDay=["08:00:00", "20:00:00"])},
        5,
        2,
        70,
        0.5,
    ),
    ("when MORN EVE", PRED, {**mg(5), **repeat(when=["MORN", "EVE"])}, 5, 2, 70, 0.5),
    (
        "doseRange high",
        PRED,
        {
            "doseAndRate": [
                {
                    "doseRange": {
                        "low": {"value": 5, "unit": "mg"},
                        "high": {"value": 10, "unit": "mg"},
                    }
                }
            ],
            **repeat(**DAILY),
        },
        10,
        1,
        70,
        1,
    ),
    ("mL with concentration from name", MIDAZOLAM, {**mg(2, "mL"), **code("QD")}, 2, 1, 14, 1),
    (
        "STU3 doseQuantity on the dosage",
        MTX,
        {"doseQuantity": {"value": 15, "unit": "mg"}, **repeat(**WEEKLY)},
        15,
        1 / 7,
        15,
        7,
    ),
    (
        "monthly",
        MTX,
        {**mg(30), **repeat(frequency=1, period=1, periodUnit="mo")},
        30,
        1 / 30,
        7,
        30,
    ),
]


@pytest.mark.parametrize(
    ("drug", "dosage", "per_admin", "per_day", "per_week", "interval"),
    [c[1:] for c in DOSES],
    ids=[c[0] for c in DOSES],
)
def test_dose_normalisation(
    drug: dict[str, Any],
    dosage: dict[str, Any],
    per_admin: float,
    per_day: float,
    per_week: float,
    interval: float,
) -> None:
    d = dose_of(drug, dosage)
    assert d.mg_per_administration == pytest.approx(per_admin)
    assert d.administrations_per_day == pytest.approx(per_day)
    assert d.mg_per_week == pytest.approx(per_week)
    assert d.mg_per_day == pytest.approx(per_week / 7)
    assert d.interval_days == pytest.approx(interval)
    assert d.unknown == ()


# (id, drug, dosage, text expected in Dose.unknown, non-mass flag)
UNKNOWN: list[tuple[str, dict[str, Any], dict[str, Any], str, bool]] = [
    (
        "no unit (Synthea)",
        PRED,
        {"doseAndRate": [{"doseQuantity": {"value": 1}}], **repeat(**DAILY)},
        "dose has no unit",
        True,
    ),
    (
        "tablets without strength",
        {"text": "methotrexate tablets"},
        {**mg(6, "TAB"), **repeat(**WEEKLY)},
        "not a mass",
        True,
    ),
    (
        "mL without strength",
        {"text": "methotrexate injection"},
        {**mg(0.6, "mL"), **code("WK")},
        "not a mass",
        True,
    ),
    ("tablets of a liquid", MIDAZOLAM, {**mg(1, "TAB"), **code("QD")}, "not a mass", True),
    ("no timing", MTX, mg(15), "no timing", False),
    ("unknown timing code", MTX, {**mg(15), **code("XYZ")}, "timing code 'XYZ'", False),
    (
        "period without unit",
        MTX,
        {**mg(15), **repeat(frequency=1, period=1)},
        "no usable period",
        False,
    ),
    ("no dose", MTX, repeat(**WEEKLY), "no dose quantity", False),
    ("absurd dose", MTX, {**mg(1e308), **code("QD")}, "out of range", False),
]


@pytest.mark.parametrize(
    ("drug", "dosage", "reason", "non_mass"), [c[1:] for c in UNKNOWN], ids=[c[0] for c in UNKNOWN]
)
def test_unknown_dose_is_said_never_guessed(
    drug: dict[str, Any], dosage: dict[str, Any], reason: str, non_mass: bool
) -> None:
    d = dose_of(drug, dosage)
    assert any(reason in u for u in d.unknown), d.unknown
    assert d.mg_per_week is None and d.mg_per_day is None
    assert d.non_mass_unit is non_mass


def test_strength_from_the_medication_ingredient() -> None:
    contained = {
        "resourceType": "Medication",
        "id": "m",
        "code": {"text": "Methotrexate injection"},
        "ingredient": [
            {
                "itemCodeableConcept": rx("6851"),
                "strength": {
                    "numerator": {"value": 25, "unit": "mg"},
                    "denominator": {"value": 1, "unit": "mL"},
                },
            }
        ],
    }
    req = med_request(
        None,
        contained=[contained],
        medicationReference={"reference": "#m"},
        dosage=[
            {
                **mg(0.6, "mL"),
                **code("WK"),
                "route": {"coding": [{"system": SNOMED, "code": "34206005"}]},
            }
        ],
    )
    (med,) = map_patient_state({"m": req}, now=NOW).medications
    assert med.classes == {"methotrexate"}
    assert med.dose is not None
    assert med.dose.mg_per_week == pytest.approx(15)
    assert med.dose.route == "subcutaneous"
    assert any("Medication.ingredient.strength" in n for n in med.dose.notes)


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ({"coding": [{"system": SNOMED, "code": "26643006"}]}, "oral"),
        ({"coding": [{"system": SNOMED, "code": "47625008"}]}, "intravenous"),
        ({"coding": [{"system": SNOMED, "code": "78421000"}]}, "intramuscular"),
        ({"text": "IV infusion"}, "intravenous"),
        ({"text": "s.c."}, "subcutaneous"),
        ({"text": "by mouth"}, "oral"),
        ({"text": "topical"}, "topical"),
        (
            {"coding": [{"system": SNOMED, "code": "6064005", "display": "Topical route"}]},
            "topical",
        ),
        ({"text": "Inhalation"}, "inhaled"),
        ({"text": "Left eye"}, "ophthalmic"),
        ({"text": "intranasal"}, "nasal"),
        ({"text": "Intramuscular route (qualifier value)"}, "intramuscular"),
        ({"text": "via gastrostomy tube"}, "via gastrostomy tube"),
        (None, "oral"),  # "Oral Tablet" in the drug name, recorded in notes
    ],
)
def test_route(route: dict[str, Any] | None, expected: str) -> None:
    dosage: dict[str, Any] = {**mg(10), **code("QD")}
    if route is not None:
        dosage["route"] = route
    assert dose_of(PRED, dosage).route == expected


def test_as_needed_and_max_dose_per_period() -> None:
    d = dose_of(
        PRED,
        {
            **mg(5),
            **code("QD"),
            "asNeededBoolean": True,
            "maxDosePerPeriod": {
                "numerator": {"value": 40, "unit": "mg"},
                "denominator": {"value": 1, "unit": "d"},
            },
        },
    )
    assert d.as_needed is True and d.max_mg_per_day == pytest.approx(40)


def test_several_dosage_lines_keep_the_highest() -> None:
    req = med_request(PRED, dosage=[{**mg(5), **code("QD")}, {**mg(20), **code("QD")}])
    (med,) = map_patient_state({"m": req}, now=NOW).medications
    assert med.dose is not None and med.dose.mg_per_day == pytest.approx(20)


def test_order_sign_dose_and_rate_object_is_tolerated() -> None:
    draft = med_request(
        MTX,
        rid="d1",
        status="draft",
        dosage=[
            {
                "doseAndRate": {"doseQuantity": {"value": 15, "unit": "mg"}},
                "timing": {"repeat": DAILY},
            }
        ],
    )
    ctx = map_order_context(bundle(draft, btype=None), ["MedicationRequest/d1"], now=NOW)
    (med,) = ctx.drafts
    assert med.dose is not None and med.dose.mg_per_week == pytest.approx(105)
    assert ctx.issues == ()


TAB_BID = {**mg(1, "TAB"), **repeat(frequency=2, period=1, periodUnit="d")}
# (id, request fields, dosage, expected days, expected source)
COURSES: list[tuple[str, dict[str, Any], dict[str, Any], float, str]] = [
    (
        "expectedSupplyDuration",
        {
            "dispenseRequest": {
                "expectedSupplyDuration": {
                    "value": 30,
                    "unit": "days",
                    "system": "http://unitsofmeasure.org",
                    "code": "d",
                }
            }
        },
        TAB_BID,
        30,
        "expectedSupplyDuration",
    ),
    (
        "supply x repeats",
        {
            "dispenseRequest": {
                "numberOfRepeatsAllowed": 2,
                "expectedSupplyDuration": {"value": 2, "unit": "wk"},
            }
        },
        TAB_BID,
        42,
        "expectedSupplyDuration x (1 + numberOfRepeatsAllowed)",
    ),
    (
        "quantity / daily use",
        {"dispenseRequest": {"quantity": {"value": 60, "unit": "TAB"}}},
        TAB_BID,
        30,
        "dispense quantity / daily use",
    ),
    (
        "validityPeriod",
        {"dispenseRequest": {"validityPeriod": {"start": "2026-06-01", "end": "2026-06-15"}}},
        TAB_BID,
        14,
        "validityPeriod",
    ),
    (
        "boundsDuration",
        {},
        {
            **TAB_BID,
            "timing": {
                "repeat": {
                    "frequency": 2,
                    "period": 1,
                    "periodUnit": "d",
                    "boundsDuration": {"value": 10, "unit": "d", "code": "d"},
                }
            },
        },
        10,
        "boundsDuration",
    ),
    (
        "boundsPeriod",
        {},
        {
            **TAB_BID,
            "timing": {
                "repeat": {
                    "frequency": 2,
                    "period": 1,
                    "periodUnit": "d",
                    "boundsPeriod": {"start": "2026-06-01", "end": "2026-06-29"},
                }
            },
        },
        28,
        "boundsPeriod",
    ),
    (
        "timing.repeat.count",
        {},
        {
            **TAB_BID,
            "timing": {"repeat": {"count": 20, "frequency": 2, "period": 1, "periodUnit": "d"}},
        },
        10,
        "timing.repeat.count",
    ),
    ("since authoredOn", {"authoredOn": "2026-05-15T12:00:00Z"}, TAB_BID, 30, "since authoredOn"),
]


@pytest.mark.parametrize(
    ("fields", "dosage", "days", "source"), [c[1:] for c in COURSES], ids=[c[0] for c in COURSES]
)
def test_course_duration(
    fields: dict[str, Any], dosage: dict[str, Any], days: float, source: str
) -> None:
    med = one(rx("21949", "cyclobenzaprine 10 MG Oral Tablet"), dosage, **fields)
    assert med.classes == {"muscle_relaxant"}
    assert med.course is not None
    assert med.course.days == pytest.approx(days)
    assert med.course.source == source


def test_active_course_reports_elapsed_days_next_to_the_intended_days() -> None:
    med = one(
        rx("21949"),
        TAB_BID,
        authoredOn="2026-05-15T12:00:00Z",
        dispenseRequest={"expectedSupplyDuration": {"value": 7, "unit": "d"}},
    )
    assert med.course is not None
    assert med.course.days == pytest.approx(7) and med.course.elapsed_days == pytest.approx(30)


def test_draft_course_has_no_elapsed_time() -> None:
    draft = med_request(
        rx("21949"), status="draft", dosage=[TAB_BID], authoredOn="2026-05-15T12:00:00Z"
    )
    (med,) = map_order_context(bundle(draft), [], now=NOW).drafts
    assert med.course is not None and med.course.days is None and med.course.elapsed_days is None


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("prednisoLONE acetate 10 MG/ML Ophthalmic Suspension", "ophthalmic"),
        ("fluticasone 50 MCG/ACTUAT Nasal Spray", "nasal"),
        ("Methotrexate 25 MG/ML Injectable Solution", None),
        ("Methotrexate 2.5 MG Oral Tablet", "oral"),
    ],
)
def test_route_from_the_dose_form_in_the_drug_name(name: str, route: str | None) -> None:
    assert dose_of({"text": name}, {**mg(10), **code("QD")}).route == route
