"""Synthetic but realistic patients of N prefetched resources, as CDS Hooks request bodies.

Every Observation carries one of the guideline's LOINC codes (guideline.needs: LAB_CODES,
VITAL_CODES, WEIGHT_CODES) with UCUM units and a reference range; weights form a series;
MedicationRequests carry coded drugs with dosage (including a benzodiazepine, prednisone and
weekly methotrexate); the Conditions include dermatomyositis and muscle spasm so the rules
have something to do.
Deterministic: the same N gives the same resources (dates relative to `now`).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cds_service.guideline.needs import PREFETCH

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
PATIENT_ID = "bench-patient"
SIZES = (10, 100, 1000, 10000)
TYPICAL = 200
# The clock of the counted benchmarks: fixed, so an instruction count does not move with the date.
COUNT_EPOCH = datetime(2026, 12, 1, tzinfo=UTC)

# (loinc, display, unit, normal low, normal high, typical value range) - guideline labs.
LABS = [
    (
        "2157-6",
        "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        26,
        192,
        (150, 4000),
    ),
    ("1761-6", "Aldolase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 1.0, 7.5, (3, 25)),
    (
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        10,
        40,
        (15, 180),
    ),
    (
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        7,
        56,
        (10, 160),
    ),
    (
        "14804-9",
        "Lactate dehydrogenase [Enzymatic activity/volume] by Lactate to pyruvate reaction",
        "U/L",
        140,
        280,
        (150, 700),
    ),
    ("4537-7", "Erythrocyte sedimentation rate by Westergren method", "mm/h", 0, 20, (5, 80)),
    ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 0, 5, (1, 60)),
    (
        "6598-7",
        "Troponin T.cardiac [Mass/volume] in Serum or Plasma",
        "ng/mL",
        0,
        0.01,
        (0.001, 0.05),
    ),
]
VITALS = [
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 90, 130, (105, 160)),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 60, 85, (60, 100)),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, (75, 190)),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, (4.8, 8.5)),
]
# (rxnorm code, display, mg per tablet, tablets per dose, frequency, period, period unit)
DRUGS = [
    ("312617", "predniSONE 5 MG Oral Tablet", 5, 8, 1, 1, "d"),
    ("105586", "Methotrexate 10 MG Oral Tablet", 10, 1.5, 1, 1, "wk"),
    ("3322", "Diazepam 5 MG Oral Tablet", 5, 1, 2, 1, "d"),
    ("314076", "lisinopril 10 MG Oral Tablet", 10, 1, 1, 1, "d"),
    (
        "860975",
        "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
        500,
        2,
        1,
        1,
        "d",
    ),
    ("617312", "atorvastatin 10 MG Oral Tablet", 10, 1, 1, 1, "d"),
    ("310965", "Ibuprofen 200 MG Oral Tablet", 200, 2, 3, 1, "d"),
    ("197943", "methocarbamol 500 MG Oral Tablet", 500, 2, 3, 1, "d"),
]
OTHER_CONDITIONS = [
    (SNOMED, "38341003", "Hypertensive disorder"),
    (SNOMED, "44054006", "Diabetes mellitus type 2"),
    (SNOMED, "55822004", "Hyperlipidemia"),
    (SNOMED, "195967001", "Asthma"),
    (SNOMED, "40055000", "Chronic sinusitis"),
    (ICD10CM, "K21.9", "Gastro-esophageal reflux disease without esophagitis"),
]


def _ts(now: datetime, days_ago: float) -> str:
    return (
        (now - timedelta(days=days_ago)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    )


def _subject() -> dict[str, str]:
    return {"reference": f"Patient/{PATIENT_ID}"}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _qty(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "active": True,
        "name": [{"use": "official", "family": "Benchmark", "given": ["Pat", "Q"]}],
        "gender": "female",
        "birthDate": "1968-04-12",
        "address": [{"line": ["1 Test Street"], "city": "Springfield", "postalCode": "01234"}],
    }


def observation(
    i: int, spec: tuple[Any, ...], days_ago: float, rng: random.Random, now: datetime
) -> dict[str, Any]:
    code, display, unit, low, high, (vmin, vmax) = spec
    value = round(rng.uniform(vmin, vmax), 3 if vmax < 1 else 1)
    category = "vital-signs" if code in ("8480-6", "8462-4", "29463-7") else "laboratory"
    interp = "H" if value > high else ("L" if value < low else "N")
    return {
        "resourceType": "Observation",
        "id": f"obs-{i}",
        "meta": {"lastUpdated": _ts(now, days_ago)},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": _concept(LOINC, code, display),
        "subject": _subject(),
        "effectiveDateTime": _ts(now, days_ago),
        "issued": _ts(now, days_ago - 0.1),
        "valueQuantity": _qty(value, unit),
        "interpretation": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": interp,
                    }
                ]
            }
        ],
        "referenceRange": [{"low": _qty(low, unit), "high": _qty(high, unit)}],
    }


def _weight(i: int, days_ago: float, kg: float, now: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{i}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": _concept(LOINC, "29463-7", "Body weight"),
        "subject": _subject(),
        "effectiveDateTime": _ts(now, days_ago),
        "valueQuantity": _qty(kg, "kg"),
    }


def medication_request(
    i: int, drug: tuple[Any, ...], status: str, days_ago: float, now: datetime
) -> dict[str, Any]:
    code, display, _mg, tablets, freq, period, unit = drug
    return {
        "resourceType": "MedicationRequest",
        "id": f"med-{i}",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": _concept(RXNORM, code, display),
        "subject": _subject(),
        "authoredOn": _ts(now, days_ago),
        "requester": {"reference": "Practitioner/bench-doc", "display": "Dr Bench"},
        "dosageInstruction": [
            {
                "sequence": 1,
                "text": f"{tablets:g} tablet(s) by mouth {freq}x per {period} {unit}",
                "timing": {"repeat": {"frequency": freq, "period": period, "periodUnit": unit}},
                "route": _concept(SNOMED, "26643006", "Oral route"),
                "doseAndRate": [{"doseQuantity": _qty(tablets, "{tbl}") | {"unit": "tablet"}}],
            }
        ],
        "dispenseRequest": {
            "validityPeriod": {"start": _ts(now, days_ago)},
            "numberOfRepeatsAllowed": 2,
            "quantity": {"value": 90, "unit": "tablet"},
            "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"},
        },
    }


def condition(
    i: int, coded: tuple[str, str, str], status: str, days_ago: float, now: datetime
) -> dict[str, Any]:
    system, code, display = coded
    return {
        "resourceType": "Condition",
        "id": f"cond-{i}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": _concept(system, code, display),
        "subject": _subject(),
        "onsetDateTime": _ts(now, days_ago),
        "recordedDate": _ts(now, days_ago - 1),
    }


def allergy(i: int, now: datetime) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": f"allergy-{i}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "type": "allergy",
        "category": ["medication"],
        "code": _concept(RXNORM, "7980", "Penicillin G"),
        "patient": _subject(),
        "recordedDate": _ts(now, 2000 + i),
        "reaction": [{"manifestation": [_concept(SNOMED, "247472004", "Hives")]}],
    }


def service_request(i: int, now: datetime) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": f"sr-{i}",
        "status": "completed" if i % 2 else "active",
        "intent": "order",
        "code": _concept(SNOMED, "266747000", "Referral to physiotherapist"),
        "subject": _subject(),
        "authoredOn": _ts(now, 30 + i),
    }


def _counts(n: int) -> dict[str, int]:
    """How a patient's N resources split (roughly a chronic patient's record)."""
    rest = n - 1
    conditions = max(2, rest * 4 // 100)
    meds = max(3, rest * 12 // 100)
    allergies = rest // 100
    srs = rest // 100
    obs = max(0, rest - conditions - meds - allergies - srs)
    weights = max(2, obs // 10) if obs >= 4 else min(obs, 2)
    return {
        "conditions": conditions,
        "medications": meds,
        "allergies": allergies,
        "service_requests": srs,
        "weight": weights,
        "labs": (obs - weights) * 2 // 3,
        "vitals": obs - weights - (obs - weights) * 2 // 3,
    }


def resources_by_key(
    n: int, now: datetime | None = None, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """N resources, grouped by the prefetch key whose query would return them."""
    now = now or datetime.now(UTC)
    rng = random.Random(n if not seed else f"{n}/{seed}")
    counts = _counts(n)
    span = 5 * 365.0  # the record covers five years
    out: dict[str, list[dict[str, Any]]] = {key: [] for key in PREFETCH}
    out["patient"] = [patient()]
    scope = [
        (SNOMED, "396230008", "Dermatomyositis"),
        (ICD10CM, "M62.830", "Muscle spasm of back"),
    ]
    for i in range(counts["conditions"]):
        coded = scope[i] if i < len(scope) else OTHER_CONDITIONS[i % len(OTHER_CONDITIONS)]
        status = "active" if i < len(scope) or i % 3 else "resolved"
        out["conditions"].append(condition(i, coded, status, rng.uniform(30, span), now))
    for i in range(counts["medications"]):
        drug = DRUGS[i % len(DRUGS)]
        # The first round is current; older rounds are the history (stopped / completed).
        status = "active" if i < len(DRUGS) else rng.choice(["completed", "stopped"])
        days = rng.uniform(1, 60) if status == "active" else rng.uniform(60, span)
        out["medications"].append(medication_request(i, drug, status, days, now))
    out["allergies"] = [allergy(i, now) for i in range(counts["allergies"])]
    out["service_requests"] = [service_request(i, now) for i in range(counts["service_requests"])]
    obs_id = 0
    kg = 72.0
    for j in range(counts["weight"]):
        days = span * (1 - j / max(1, counts["weight"]))
        kg = round(kg + rng.uniform(-0.6, 0.5), 1)
        out["weight"].append(_weight(obs_id, days, kg, now))
        obs_id += 1
    for key, specs in (("labs", LABS), ("vitals", VITALS)):
        for j in range(counts[key]):
            spec = specs[j % len(specs)]
            out[key].append(observation(obs_id, spec, rng.uniform(0.5, span), rng, now))
            obs_id += 1
    return out


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A search Bundle as a FHIR server answers the prefetch query."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def prefetch(n: int, now: datetime | None = None, seed: int = 0) -> dict[str, Any]:
    """The prefetch object of a patient with N resources (Patient + searchset Bundles)."""
    grouped = resources_by_key(n, now, seed)
    data: dict[str, Any] = {}
    for key, items in grouped.items():
        data[key] = items[0] if key == "patient" else searchset(items)
    return data


def draft_orders(now: datetime | None = None) -> dict[str, Any]:
    """order-select drafts: high-dose prednisone (selected) and a benzodiazepine."""
    now = now or datetime.now(UTC)
    pred = medication_request(90001, DRUGS[0], "draft", 0, now)
    benzo = medication_request(90002, DRUGS[2], "draft", 0, now)
    for draft in (pred, benzo):
        draft["intent"] = "proposal"
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": pred}, {"resource": benzo}],
    }


def request_body(hook: str, n: int, now: datetime | None = None, seed: int = 0) -> dict[str, Any]:
    """A complete CDS Hooks request for `hook` with N prefetched resources."""
    context: dict[str, Any] = {"userId": "Practitioner/bench-doc", "patientId": PATIENT_ID}
    if hook == "order-select":
        context["draftOrders"] = draft_orders(now)
        context["selections"] = ["MedicationRequest/med-90002", "MedicationRequest/med-90001"]
    else:
        context["encounterId"] = "bench-encounter"
    return {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": "https://ehr.example.org/fhir",
        "context": context,
        "prefetch": prefetch(n, now, seed),
    }


NEW_PATIENT = (
    "a new patient: its own patient id, its own values (random seed), every date and time"
    " moved (so every resource's bytes differ); the same counts of each resource type"
)


def new_patient_body(hook: str, n: int, serial: int, epoch: datetime) -> bytes:
    """The request body of patient `serial` (>= 1): unlike any other serial's (NEW_PATIENT)."""
    body = request_body(hook, n, now=epoch - timedelta(minutes=7 * serial), seed=serial)
    return orjson.dumps(body).replace(f'{PATIENT_ID}"'.encode(), f'{PATIENT_ID}-{serial}"'.encode())


def resource_count(body: dict[str, Any]) -> int:
    """Resources in a request's prefetch (for labels and checks)."""
    total = 0
    for value in body.get("prefetch", {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            total += len(value.get("entry", []))
        elif isinstance(value, dict):
            total += 1
    return total
