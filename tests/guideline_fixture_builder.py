"""Writes the guideline scenario fixtures (fixtures/<rec>-<branch>/); run as a module.

`python -m tests.guideline_fixture_builder` regenerates patient.json / request.json /
expected.json for every scenario below. Dates are relative ("@now-30d"), rolled at load time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
PID = "fx-patient"

CONDITIONS = {
    "dermatomyositis": ("396230008", "Dermatomyositis"),
    "polymyositis": ("31384009", "Polymyositis"),
    "spasm": ("45352006", "Spasm"),
    "calcinosis": ("82650004", "Calcinosis"),
    "hypertension": ("38341003", "Hypertensive disorder"),
}
DRUGS = {
    "diazepam": ("3322", "Diazepam 5 MG Oral Tablet"),
    "lorazepam": ("6470", "Lorazepam 1 MG Oral Tablet"),
    "acetaminophen": ("161", "Acetaminophen 500 MG Oral Tablet"),
    "prednisone": ("8640", "predniSONE 5 MG Oral Tablet"),
    "methotrexate": ("6851", "Methotrexate 2.5 MG Oral Tablet"),
    "mycophenolate": ("68149", "Mycophenolate mofetil 500 MG Oral Tablet"),
    "cyclobenzaprine": ("21949", "Cyclobenzaprine 10 MG Oral Tablet"),
    "naproxen": ("7258", "Naproxen 500 MG Oral Tablet"),
    "ibuprofen": ("5640", "Ibuprofen 400 MG Oral Tablet"),
}
LABS = {
    "ck": ("2157-6", "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "aldolase": ("1761-6", "Aldolase [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "ast": ("1920-8", "AST [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "alt": ("1742-6", "ALT [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "ldh": ("14804-9", "LDH [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "esr": ("4537-7", "ESR by Westergren method", "mm/h"),
    "crp": ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L"),
    "troponin_i": ("10839-9", "Troponin I.cardiac [Mass/volume] in Serum or Plasma", "ng/mL"),
    "weight": ("29463-7", "Body weight", "kg"),
    "glucose": ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL"),
    "hba1c": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%"),
}


class Patient:
    """Accumulates one fixture patient's resources."""

    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = [
            {
                "resourceType": "Patient",
                "id": PID,
                "gender": "female",
                "birthDate": "1974-03-02",
                "name": [{"family": "Fixture", "given": ["Pat"]}],
            }
        ]
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def condition(
        self,
        kind: str,
        status: str = "active",
        severity: str | None = None,
    ) -> Patient:
        code, display = CONDITIONS[kind]
        res: dict[str, Any] = {
            "resourceType": "Condition",
            "id": self._id("cond"),
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": status,
                    }
                ]
            },
            "code": {
                "coding": [{"system": SCT, "code": code, "display": display}],
                "text": display,
            },
            "subject": {"reference": f"Patient/{PID}"},
            "onsetDateTime": "@now-120d",
        }
        if severity:
            res["severity"] = {"coding": [{"system": SCT, "code": "24484000", "display": "Severe"}]}
        self.resources.append(res)
        return self

    def lab(self, kind: str, value: float, days_ago: int, high: float | None = None) -> Patient:
        code, display, unit = LABS[kind]
        res: dict[str, Any] = {
            "resourceType": "Observation",
            "id": self._id(f"{kind.replace('_', '')}-"),
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": {"reference": f"Patient/{PID}"},
            "effectiveDateTime": f"@now-{days_ago}d",
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        }
        if high is not None:
            res["referenceRange"] = [
                {"high": {"value": high, "unit": unit, "system": UCUM, "code": unit}}
            ]
        self.resources.append(res)
        return self

    def med(
        self,
        drug: str,
        days_ago: int = 10,
        status: str = "active",
        **dosage: Any,
    ) -> Patient:
        self.resources.append(
            medication_request(self._id("med"), drug, status, f"@now-{days_ago}d", **dosage)
        )
        return self

    def bundle(self) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r}
                for r in self.resources
            ],
        }


def medication_request(
    rid: str,
    drug: str,
    status: str,
    authored: str,
    *,
    mg: float = 0,
    per: float = 1,
    unit: str = "d",
    route: str = "oral",
    supply_days: int | None = None,
) -> dict[str, Any]:
    code, text = DRUGS[drug]
    routes = {
        "oral": ("26643006", "Oral route"),
        "subcutaneous": ("34206005", "Subcutaneous route"),
    }
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "proposal" if status == "draft" else "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": drug}],
            "text": text,
        },
        "subject": {"reference": f"Patient/{PID}"},
        "authoredOn": authored,
    }
    if mg:
        res["dosageInstruction"] = [
            {
                "timing": {"repeat": {"frequency": 1, "period": per, "periodUnit": unit}},
                "route": {
                    "coding": [
                        {"system": SCT, "code": routes[route][0], "display": routes[route][1]}
                    ]
                },
                "doseAndRate": [
                    {"doseQuantity": {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}}
                ],
            }
        ]
    if supply_days is not None:
        res["dispenseRequest"] = {
            "expectedSupplyDuration": {
                "value": supply_days,
                "unit": "days",
                "system": UCUM,
                "code": "d",
            }
        }
    return res


def order_select(
    *drafts: dict[str, Any],
    selected: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    refs = (
        selected if selected is not None else tuple(f"MedicationRequest/{d['id']}" for d in drafts)
    )
    return {
        "hook": "order-select",
        "service": "myopathy-order-select",
        "context": {
            "userId": "Practitioner/fx-doc",
            "patientId": PID,
            "selections": list(refs),
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": d} for d in drafts],
            },
        },
    }


def patient_view() -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "service": "myopathy-patient-view",
        "context": {"userId": "Practitioner/fx-doc", "patientId": PID},
    }


def draft(drug: str, rid: str = "draft1", **dosage: Any) -> dict[str, Any]:
    return medication_request(rid, drug, "draft", "@now", **dosage)


def card(
    rec: str,
    indicator: str,
    summary: str,
    suggestions: list[tuple[str, list[tuple[str, str | None]]]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"recommendationId": rec, "indicator": indicator, "summary": summary}
    if suggestions:
        out["suggestions"] = [
            {
                "label": label,
                "actions": [{"type": t, **({"resourceId": r} if r else {})} for t, r in actions],
            }
            for label, actions in suggestions
        ]
    return out


Scenario = tuple[Patient, dict[str, Any], list[dict[str, Any]]]
SCENARIOS: dict[str, Callable[[], Scenario]] = {}


def scenario(name: str) -> Callable[[Callable[[], Scenario]], Callable[[], Scenario]]:
    def register(fn: Callable[[], Scenario]) -> Callable[[], Scenario]:
        SCENARIOS[name] = fn
        return fn

    return register


BENZO_SUMMARY = "Remove the diazepam order: benzodiazepines show no pain benefit here (ref 6)"


@scenario("cau-2-fires")
def _cau2_fires() -> Scenario:
    return (
        Patient().condition("spasm"),
        order_select(draft("diazepam", mg=5, per=1)),
        [
            card(
                "CAU-2",
                "warning",
                BENZO_SUMMARY,
                [("Remove the diazepam draft order", [("delete", "MedicationRequest/draft1")])],
            )
        ],
    )


@scenario("cau-2-not-benzodiazepine")
def _cau2_other() -> Scenario:
    return (Patient().condition("spasm"), order_select(draft("acetaminophen", mg=500)), [])


@scenario("cau-2-out-of-scope")
def _cau2_scope() -> Scenario:
    return (Patient().condition("hypertension"), order_select(draft("diazepam", mg=5)), [])


@scenario("cau-2-missing-data")
def _cau2_missing() -> Scenario:
    # A sandbox-style draft with no medication: nothing to classify, so nothing is claimed.
    bare = draft("diazepam", mg=5)
    del bare["medicationCodeableConcept"]
    return (Patient().condition("spasm"), order_select(bare), [])


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
