"""Observations -> Measurement series: value sets, units, statuses, shapes."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import map_patient_state
from tests.mapping_builders import LOINC, NOW, UCUM, bundle, observation, quantity

RR_UL = [{"low": quantity(24, "U/L"), "high": quantity(195, "U/L")}]

# (case id, observation, expected kind, value, unit, comparator)
VALUES: list[tuple[str, dict[str, Any], str, float | None, str | None, str | None]] = [
    ("ck U/L", observation("2157-6", quantity(250, "U/L")), "ck", 250, "U/L", None),
    ("ck ukat/L", observation("2157-6", quantity(5, "ukat/L")), "ck", 300, "U/L", None),
    ("alt IU/L", observation("1742-6", quantity(40, "IU/L")), "alt", 40, "U/L", None),
    ("aldolase", observation("1761-6", quantity(7.5, "U/L")), "aldolase", 7.5, "U/L", None),
    ("ast", observation("1920-8", quantity(30, "U/L")), "ast", 30, "U/L", None),
    ("ldh old code", observation("2532-0", quantity(200, "U/L")), "ldh", 200, "U/L", None),
    ("ldh", observation("14804-9", quantity(210, "U/L")), "ldh", 210, "U/L", None),
    ("esr", observation("4537-7", quantity(22, "mm/h")), "esr", 22, "mm/h", None),
    ("esr other", observation("30341-2", quantity(12, "mm/h")), "esr", 12, "mm/h", None),
    ("crp mg/dL", observation("1988-5", quantity(1.2, "mg/dL")), "crp", 12, "mg/L", None),
    ("hs-crp", observation("30522-7", quantity(3, "mg/L")), "crp", 3, "mg/L", None),
    ("tnI ng/mL", observation("10839-9", quantity(0.04, "ng/mL")), "troponin", 40, "ng/L", None),
    ("hs tnT", observation("67151-1", quantity(14, "ng/L")), "troponin", 14, "ng/L", None),
    ("tnT", observation("6598-7", quantity(0.01, "ug/L")), "troponin", 10, "ng/L", None),
    ("hs tnI", observation("89579-7", quantity(26, "pg/mL")), "troponin", 26, "ng/L", None),
    ("weight kg", observation("29463-7", quantity(70, "kg")), "weight", 70, "kg", None),
    (
        "weight lb (R4 example)",
        observation("29463-7", quantity(185, "[lb_av]", "lbs")),
        "weight",
        185 * 0.45359237,
        "kg",
        None,
    ),
    ("weight g", observation("29463-7", quantity(3500, "g")), "weight", 3.5, "kg", None),
    ("height", observation("8302-2", quantity(1.8, "m")), "height", 180, "cm", None),
    (
        "glucose mmol/L",
        observation("2345-7", quantity(5.5, "mmol/L")),
        "glucose",
        5.5 * 18.016,
        "mg/dL",
        None,
    ),
    ("glucose blood", observation("2339-0", quantity(99, "mg/dL")), "glucose", 99, "mg/dL", None),
    (
        "unit case folded",
        observation("2345-7", {"value": 99, "unit": "mg/dl"}),
        "glucose",
        99,
        "mg/dL",
        None,
    ),
    (
        "unit case folded mmol",
        observation("2345-7", {"value": 5, "unit": "MMOL/L"}),
        "glucose",
        5 * 18.016,
        "mg/dL",
        None,
    ),
    ("hba1c %", observation("4548-4", quantity(6.1, "%")), "hba1c", 6.1, "%", None),
    (
        "hba1c IFCC",
        observation("4548-4", quantity(48, "mmol/mol")),
        "hba1c",
        48 * 0.09148 + 2.152,
        "%",
        None,
    ),
    (
        "comparator on quantity",
        observation("2157-6", {**quantity(5, "U/L"), "comparator": "<"}),
        "ck",
        5,
        "U/L",
        "<",
    ),
    (
        "valueString <5 with range unit",
        observation("2157-6", None, valueString="<5", referenceRange=RR_UL),
        "ck",
        5,
        "U/L",
        "<",
    ),
    (
        "valueString >1000 U/L",
        observation("2157-6", None, valueString=">1000 U/L"),
        "ck",
        1000,
        "U/L",
        ">",
    ),
    (
        "unit text only, no UCUM system",
        observation("2157-6", {"value": 90, "unit": "U/L"}),
        "ck",
        90,
        "U/L",
        None,
    ),
    (
        "antibody numeric keeps its unit",
        observation("11565-9", quantity(12, "U/mL")),
        "anti_jo1",
        12,
        "U/mL",
        None,
    ),
]


@pytest.mark.parametrize(
    ("res", "kind", "value", "unit", "comparator"),
    [case[1:] for case in VALUES],
    ids=[case[0] for case in VALUES],
)
def test_values_are_normalised_to_the_canonical_unit(
    res: dict[str, Any], kind: str, value: float, unit: str, comparator: str | None
) -> None:
    state = map_patient_state({"labs": bundle(res)}, now=NOW)
    assert state.issues == ()
    m = state.get_series(kind).latest
    assert m is not None
    assert m.value == pytest.approx(value)
    assert m.unit == unit
    assert m.comparator == comparator
    assert m.resource_id == "o1"


# (case id, observation, kind or None when nothing is kept, issue text expected)
UNUSABLE: list[tuple[str, dict[str, Any], str | None, str]] = [
    (
        "entered-in-error",
        observation("2157-6", quantity(9, "U/L"), status="entered-in-error"),
        None,
        "status entered-in-error",
    ),
    (
        "cancelled",
        observation("2157-6", quantity(9, "U/L"), status="cancelled"),
        None,
        "status cancelled",
    ),
    ("registered", observation("2157-6", status="registered"), None, "status registered"),
    (
        "data absent",
        observation("2157-6", dataAbsentReason={"text": "Not performed"}),
        None,
        "data absent (Not performed)",
    ),
    ("no time", observation("2157-6", quantity(9, "U/L"), when=""), None, "no effective time"),
    ("unknown unit", observation("2157-6", quantity(9, "mmol/s")), "ck", "unknown unit"),
    ("no unit", observation("2157-6", {"value": 9}), "ck", "no unit given"),
    ("valueString no unit anywhere", observation("2157-6", valueString="<5"), "ck", "no unit"),
    ("no value", observation("2157-6"), None, "ck: no value"),
    (
        "overflow on conversion",
        observation("10839-9", quantity(1e306, "ng/mL")),
        "troponin",
        "out of range",
    ),
]


@pytest.mark.parametrize(
    ("res", "kind", "issue"), [c[1:] for c in UNUSABLE], ids=[c[0] for c in UNUSABLE]
)
def test_unusable_values_are_reported_never_assumed(
    res: dict[str, Any], kind: str | None, issue: str
) -> None:
    state = map_patient_state({"labs": res}, now=NOW)
    assert any(i.resource == "Observation/o1" and issue in i.reason for i in state.issues), (
        state.issues
    )
    if kind is None:
        assert state.series == {}
    else:
        m = state.get_series(kind).latest
        assert m is not None and m.value is None and m.unit is None
        assert m.unusable_reason is not None and issue in m.unusable_reason


def test_preliminary_results_are_kept_with_their_status() -> None:
    state = map_patient_state(
        {"labs": observation("10839-9", quantity(0.5, "ng/mL"), status="preliminary")}, now=NOW
    )
    m = state.get_series("troponin").latest
    assert m is not None and m.status == "preliminary" and m.value == pytest.approx(500)
    assert m.analyte == "troponin_i"


def test_blood_pressure_panel_components() -> None:
    panel = observation(
        "85354-9",
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": quantity(150, "mm[Hg]"),
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 95, "unit": "mmHg"},
            },
        ],
    )
    state = map_patient_state({"vitals": bundle(panel, btype="collection")}, now=NOW)
    systolic = state.get_series("bp_systolic").latest
    diastolic = state.get_series("bp_diastolic").latest
    assert systolic is not None and systolic.value == 150 and systolic.unit == "mm[Hg]"
    assert diastolic is not None and diastolic.value == 95 and diastolic.unit == "mm[Hg]"
    assert systolic.effective == diastolic.effective == panel_time()


def panel_time() -> Any:
    from fhir_mappings.raw import parse_datetime

    return parse_datetime("2026-06-01T08:00:00Z")


def test_match_is_system_plus_code_never_code_alone() -> None:
    race = observation("2157-6", quantity(1, "U/L"), system="urn:oid:2.16.840.1.113883.6.238")
    state = map_patient_state({"x": race}, now=NOW)
    assert state.series == {}


def test_any_of_several_codings_matches() -> None:
    res = observation("2157-6", quantity(300, "U/L"))
    res["code"]["coding"].insert(0, {"system": "http://acme.org/labs", "code": "CK"})
    state = map_patient_state({"x": res}, now=NOW)
    assert state.get_series("ck").latest is not None


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("effectiveInstant", "2026-05-02T10:00:00.123+02:00", "2026-05-02T08:00:00.123000+00:00"),
        (
            "effectivePeriod",
            {"start": "2026-05-01", "end": "2026-05-03"},
            "2026-05-03T00:00:00+00:00",
        ),
        ("issued", "2026-05-04T00:00:00Z", "2026-05-04T00:00:00+00:00"),
    ],
)
def test_effective_time_shapes(field: str, value: Any, expected: str) -> None:
    res = observation("2157-6", quantity(1, "U/L"), when="")
    res[field] = value
    m = map_patient_state({"x": res}, now=NOW).get_series("ck").latest
    assert m is not None and m.effective is not None
    assert m.effective.isoformat() == expected


def test_reference_range_and_interpretation_are_converted_and_kept() -> None:
    res = observation(
        "2157-6",
        quantity(10, "ukat/L"),
        referenceRange=[{"low": quantity(0.4, "ukat/L"), "high": quantity(3.2, "ukat/L")}],
        interpretation=[{"coding": [{"code": "H"}]}],
    )
    m = map_patient_state({"x": res}, now=NOW).get_series("ck").latest
    assert m is not None and m.value == pytest.approx(600)
    assert m.reference_range is not None
    assert m.reference_range.high == pytest.approx(192) and m.reference_range.unit == "U/L"
    assert m.interpretation == ("H",)
    assert m.original_value == 10 and m.original_unit == "ukat/L"


def test_coded_antibody_result_is_kept_as_text() -> None:
    res = observation("33571-1", None, valueCodeableConcept={"text": "Positive"})
    m = map_patient_state({"x": res}, now=NOW).get_series("anti_jo1").latest
    assert m is not None and m.value is None and m.text == "Positive"


def test_ecg_counts_without_a_value() -> None:
    res = observation("11524-6", None, valueString="Sinus rhythm")
    m = map_patient_state({"x": res}, now=NOW).get_series("ecg").latest
    assert m is not None and m.text == "Sinus rhythm"


def test_series_is_sorted_oldest_first_and_deduplicated() -> None:
    a = observation("2157-6", quantity(900, "U/L"), oid="a", when="2026-06-01")
    b = observation("2157-6", quantity(300, "U/L"), oid="b", when="2026-01-01")
    state = map_patient_state({"labs": bundle(a, b), "again": bundle(b)}, now=NOW)
    assert [m.resource_id for m in state.get_series("ck").items] == ["b", "a"]


def test_unrelated_observations_are_not_parsed() -> None:
    broken_unrelated = observation("8867-4", {"value": "not a number", "unit": "/min"})
    state = map_patient_state({"x": broken_unrelated}, now=NOW)
    assert state.issues == () and state.series == {}


def test_invalid_relevant_observation_is_reported_and_skipped() -> None:
    broken = observation("2157-6", {"value": "abc", "unit": "U/L", "system": UCUM})
    good = observation("2157-6", quantity(100, "U/L"), oid="o2")
    state = map_patient_state({"x": bundle(broken, good)}, now=NOW)
    assert [m.resource_id for m in state.get_series("ck").items] == ["o2"]
    assert [i.resource for i in state.issues] == ["Observation/o1"]
    assert "invalid R4" in state.issues[0].reason


def test_troponin_analytes_have_their_own_series_within_the_kind() -> None:
    hs_i = observation("89579-7", quantity(30, "ng/L"), oid="i")
    t = observation("6598-7", quantity(0.02, "ng/mL"), oid="t", when="2026-06-02")
    state = map_patient_state({"labs": bundle(hs_i, t)}, now=NOW)
    assert [m.resource_id for m in state.get_series("troponin").items] == ["i", "t"]
    assert [m.resource_id for m in state.get_series("troponin_i_hs").items] == ["i"]
    assert [m.value for m in state.get_series("troponin_t").items] == [pytest.approx(20)]


def test_ecg_reported_as_a_diagnostic_report_counts() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "id": "ecg1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "11524-6"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-06-10",
        "conclusion": "Sinus rhythm, no ST changes",
    }
    lab_report = {**report, "id": "ck1", "code": {"coding": [{"system": LOINC, "code": "2157-6"}]}}
    state = map_patient_state({"reports": bundle(report, lab_report)}, now=NOW)
    (ecg,) = state.get_series("ecg").items
    assert ecg.resource_id == "ecg1" and ecg.text == "Sinus rhythm, no ST changes"
    assert state.get_series("ck").items == ()  # a lab report's values live in Observations


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"status": "done"}, "status"),
        ({"effectiveDateTime": "yesterday"}, "effectiveDateTime"),
        ({"valueQuantity": {"value": 5, "unit": 7}}, "valueQuantity"),
        ({"referenceRange": [{"high": {"value": "high"}}]}, "referenceRange.0"),
        ({"referenceRange": {"high": {"value": 3}, "type": "normal"}}, "referenceRange"),
        ({"component": [{"valueQuantity": {"value": 1}}]}, "component.0"),
        ({"interpretation": "H"}, "interpretation"),
        ({"id": 5}, "id"),
    ],
)
def test_relevant_observation_elements_are_validated_as_r4(
    fields: dict[str, Any], where: str
) -> None:
    res = {**observation("2157-6", quantity(100, "U/L")), **fields}
    state = map_patient_state({"labs": res}, now=NOW)
    assert state.series == {}
    (issue,) = state.issues
    assert issue.reason.startswith(f"invalid R4: {where}"), issue.reason


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"valueString": "1:160"}, "1:160"),
        ({"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 320}}}, "1:320"),
        ({"valueString": "Positive (2.3 AI)"}, "Positive (2.3 AI)"),
    ],
)
def test_antibody_titers_and_text_results_stay_text(fields: dict[str, Any], text: str) -> None:
    res = {**observation("8076-2"), **fields}
    state = map_patient_state({"x": res}, now=NOW)
    m = state.get_series("anti_jo1").latest
    assert m is not None and m.value is None and m.text == text
    assert state.issues == ()


def test_unknown_elements_are_ignored_where_the_read_ones_are_valid() -> None:
    """Tolerant reader: a vendor element the mapping never reads does not drop the lab."""
    res = {**observation("2157-6", quantity(100, "U/L")), "vendorFlag": {"x": 1}}
    res["referenceRange"] = [{"high": {"value": 200, "unit": "U/L"}, "vendorNote": "lab A"}]
    state = map_patient_state({"labs": res}, now=NOW)
    (ck,) = state.get_series("ck").items
    assert ck.value == 100 and ck.reference_range is not None
    assert ck.reference_range.high == 200
    assert state.issues == ()
