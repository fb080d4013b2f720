"""Conditions, allergies, patient, service requests and prefetch shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from fhir_mappings import map_patient_state
from tests.mapping_builders import (
    ICD10CM,
    LOINC,
    NOW,
    SNOMED,
    bundle,
    condition,
    observation,
    quantity,
)

# (id, condition, categories, matched_by)
CONDITIONS: list[tuple[str, dict[str, Any], set[str], tuple[str, ...]]] = [
    (
        "SNOMED dermatomyositis",
        condition("396230008"),
        {"myopathy", "dermatomyositis"},
        ("snomed:396230008",),
    ),
    ("SNOMED polymyositis", condition("31384009"), {"myopathy"}, ("snomed:31384009",)),
    (
        "ICD-10-CM M33.12 with dot",
        condition("M33.12", system=ICD10CM),
        {"myopathy", "dermatomyositis"},
        ("icd10cm:M33.12",),
    ),
    (
        "ICD-10-CM M3322 without dot",
        condition("M3322", system=ICD10CM),
        {"myopathy"},
        ("icd10cm:M3322",),
    ),
    (
        "ICD-10-CM M60.9 myositis",
        condition("M60.9", system=ICD10CM),
        {"myopathy"},
        ("icd10cm:M60.9",),
    ),
    (
        "ICD-10-CM M60.009 infective myositis is out",
        condition("M60.009", system=ICD10CM, text="Infective myositis, unspecified site"),
        set(),
        (),
    ),
    (
        "inclusion body myositis is not myopathy scope",
        condition("G72.41", system=ICD10CM),
        {"inclusion_body_myositis"},
        ("icd10cm:G72.41",),
    ),
    (
        "IBM by name",
        condition(None, text="Sporadic inclusion body myositis"),
        {"inclusion_body_myositis"},
        ("name:inclusion body myositis",),
    ),
    (
        "ICD-10-CM muscle spasm of back",
        condition("M62.830", system=ICD10CM),
        {"spasm"},
        ("icd10cm:M62.830",),
    ),
    ("ICD-10-CM R25.2 cramp", condition("R25.2", system=ICD10CM), {"spasm"}, ("icd10cm:R25.2",)),
    ("SNOMED muscle spasm", condition("45352006"), {"spasm"}, ("snomed:45352006",)),
    ("SNOMED myocarditis", condition("50920009"), {"cardiac_involvement"}, ("snomed:50920009",)),
    (
        "antisynthetase by name",
        condition("999999", text="Antisynthetase syndrome"),
        {"myopathy", "antisynthetase"},
        ("name:antisynthetase",),
    ),
    (
        "necrotizing by name",
        condition(None, text="Immune-mediated necrotizing myopathy"),
        {"myopathy", "necrotizing"},
        ("name:necrotizing myopathy",),
    ),
    (
        "IMNM abbreviation",
        condition(None, text="IMNM (anti-HMGCR)"),
        {"myopathy", "necrotizing"},
        ("name:imnm",),
    ),
    (
        "idiopathic inflammatory myopathies",
        condition(None, text="Idiopathic inflammatory myopathies"),
        {"myopathy"},
        ("name:inflammatory myopathies",),
    ),
    (
        "back spasm by name",
        condition(None, text="Spasm of back muscles"),
        {"spasm"},
        ("name:spasm of back muscles",),
    ),
    (
        "leg cramps by name",
        condition(None, text="Nocturnal leg cramps"),
        {"spasm"},
        ("name:cramps",),
    ),
    ("menstrual cramps are not spasm scope", condition(None, text="Menstrual cramps"), set(), ()),
    ("esophageal spasm is not spasm scope", condition(None, text="Esophageal spasm"), set(), ()),
    (
        "ICD-10-CM M36.0",
        condition("M36.0", system=ICD10CM),
        {"myopathy", "dermatomyositis"},
        ("icd10cm:M36.0",),
    ),
    (
        "calcinosis by name",
        condition(None, text="Calcinosis cutis"),
        {"calcinosis"},
        ("name:calcinosis",),
    ),
    ("unrelated", condition("44054006", text="Diabetes mellitus type 2"), set(), ()),
    (
        "family history by name is not the patient's",
        condition(None, text="Family history of dermatomyositis"),
        set(),
        (),
    ),
    ("suspected by name is not matched", condition(None, text="Suspected myositis"), set(), ()),
    (
        "recurrence counts",
        condition("396230008", clinical="recurrence"),
        {"myopathy", "dermatomyositis"},
        ("snomed:396230008",),
    ),
    (
        "relapse counts",
        condition("31384009", clinical="relapse"),
        {"myopathy"},
        ("snomed:31384009",),
    ),
    (
        "no clinical status, not abated",
        condition("31384009", clinical=None),
        {"myopathy"},
        ("snomed:31384009",),
    ),
]


@pytest.mark.parametrize(
    ("res", "categories", "matched_by"), [c[1:] for c in CONDITIONS], ids=[c[0] for c in CONDITIONS]
)
def test_condition_categories(
    res: dict[str, Any], categories: set[str], matched_by: tuple[str, ...]
) -> None:
    state = map_patient_state({"conditions": bundle(res)}, now=NOW)
    (c,) = state.conditions
    assert c.categories == categories
    assert c.matched_by == matched_by


@pytest.mark.parametrize(
    "res",
    [
        condition("396230008", clinical="resolved"),
        condition("396230008", clinical="inactive"),
        condition("396230008", clinical="remission"),
        condition("396230008", verification="refuted"),
        condition("396230008", verification="entered-in-error"),
        condition("396230008", clinical=None, abatementDateTime="2020-01-01"),
    ],
    ids=["resolved", "inactive", "remission", "refuted", "entered-in-error", "abated"],
)
def test_conditions_not_current_are_excluded(res: dict[str, Any]) -> None:
    state = map_patient_state({"conditions": res}, now=NOW)
    assert state.conditions == ()
    assert not state.has_category("myopathy")


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ({"coding": [{"system": SNOMED, "code": "24484000"}]}, "severe"),
        ({"coding": [{"system": SNOMED, "code": "6736007"}]}, "moderate"),
        ({"coding": [{"system": SNOMED, "code": "255604002"}]}, "mild"),
        ({"text": "Severe"}, "severe"),
        (None, None),
    ],
)
def test_condition_severity(severity: dict[str, Any] | None, expected: str | None) -> None:
    res = condition("396230008")
    if severity is not None:
        res["severity"] = severity
    (c,) = map_patient_state({"c": res}, now=NOW).conditions
    assert c.severity == expected


def allergy(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "type": "intolerance",
        "code": {"text": text},
        "patient": {"reference": "Patient/p1"},
        **extra,
    }


def test_methotrexate_intolerance_is_classified() -> None:
    state = map_patient_state({"allergies": bundle(allergy("Methotrexate"))}, now=NOW)
    (a,) = state.allergies
    assert a.ingredients == {"methotrexate"} and a.classes == {"methotrexate"}
    assert a.category == "intolerance" and a.matched_by == ("name:methotrexate",)


def test_allergy_by_reaction_substance_rxnorm_code() -> None:
    res = allergy(
        "drug intolerance",
        reaction=[
            {
                "substance": {
                    "coding": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6851"}
                    ]
                },
                "manifestation": [{"text": "nausea"}],
            }
        ],
    )
    (a,) = map_patient_state({"a": res}, now=NOW).allergies
    assert a.classes == {"methotrexate"}


@pytest.mark.parametrize("status", ["inactive", "resolved"])
def test_inactive_allergies_are_excluded(status: str) -> None:
    res = allergy("Methotrexate", clinicalStatus={"coding": [{"code": status}]})
    assert map_patient_state({"a": res}, now=NOW).allergies == ()


@pytest.mark.parametrize(
    ("birth", "age"),
    [("1980-06-14", 46), ("1980-06-15", 45), ("1980", 46), ("2030-01-01", None), (None, None)],
)
def test_patient_age_and_sex(birth: str | None, age: int | None) -> None:
    res: dict[str, Any] = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    if birth:
        res["birthDate"] = birth
    state = map_patient_state({"patient": res}, now=NOW)
    assert state.patient is not None
    assert state.patient.age_years == age and state.patient.sex == "female"


def service_request(concept: dict[str, Any], status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "s1",
        "status": status,
        "intent": "order",
        "code": concept,
        "subject": {"reference": "Patient/p1"},
    }


@pytest.mark.parametrize(
    ("res", "kinds"),
    [
        (
            service_request({"coding": [{"system": SNOMED, "code": "306170007"}]}),
            {"physiotherapy_referral"},
        ),
        (service_request({"text": "Referral to physical therapy"}), {"physiotherapy_referral"}),
        (service_request({"coding": [{"system": LOINC, "code": "2157-6"}]}), {"ck"}),
        (service_request({"coding": [{"system": LOINC, "code": "11524-6"}]}), {"ecg"}),
        (service_request({"coding": [{"system": SNOMED, "code": "306170007"}]}, "revoked"), set()),
        (service_request({"text": "Chest X-ray"}), set()),
        (service_request({"coding": [{"system": SNOMED, "code": "266747000"}]}), set()),
    ],
    ids=[
        "physio code",
        "physio text",
        "ck order",
        "ecg order",
        "revoked",
        "unrelated",
        "referral to private doctor",
    ],
)
def test_service_requests_on_record(res: dict[str, Any], kinds: set[str]) -> None:
    state = map_patient_state({"service_requests": bundle(res)}, now=NOW)
    assert state.service_request_kinds == kinds
    assert len(state.service_requests) == (0 if res["status"] == "revoked" else 1)


CK = observation("2157-6", quantity(100, "U/L"))
PREFETCH_SHAPES: list[tuple[str, dict[str, Any], int, int]] = [
    ("bare resource", {"k": CK}, 1, 0),
    ("searchset", {"k": bundle(CK)}, 1, 0),
    ("collection", {"k": bundle(CK, btype="collection")}, 1, 0),
    ("Bundle without type", {"k": bundle(CK, btype=None)}, 1, 0),
    ("None value", {"k": None}, 0, 0),
    ("string value (spec example 'user': '123')", {"user": "123"}, 0, 1),
    ("list of resources", {"k": [CK, None]}, 1, 0),
    ("nested Bundle", {"k": bundle(bundle(CK))}, 1, 0),
    ("same resource under two keys", {"a": CK, "b": bundle(CK)}, 1, 0),
    (
        "entry without resource",
        {"k": {"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}},
        0,
        0,
    ),
    ("OperationOutcome", {"k": {"resourceType": "OperationOutcome", "issue": []}}, 0, 0),
]


@pytest.mark.parametrize(
    ("prefetch", "n_ck", "n_issues"),
    [c[1:] for c in PREFETCH_SHAPES],
    ids=[c[0] for c in PREFETCH_SHAPES],
)
def test_prefetch_shapes(prefetch: dict[str, Any], n_ck: int, n_issues: int) -> None:
    state = map_patient_state(prefetch, now=NOW)
    assert len(state.get_series("ck").items) == n_ck
    assert len(state.issues) == n_issues


def test_unavailable_prefetch_is_carried() -> None:
    state = map_patient_state({"labs": None}, now=NOW, unavailable={"labs": "FHIR server timeout"})
    assert state.unavailable == ("labs",)
    assert state.unavailable_reasons == {"labs": "FHIR server timeout"}


def test_naive_now_is_treated_as_utc() -> None:
    state = map_patient_state({"k": CK}, now=datetime(2026, 6, 14, 12, 0))
    assert state.get_series("ck").time_since_latest(datetime(2026, 6, 14, 12, 0)) is not None
