"""Building blocks for the guideline scenario fixtures (patients, requests, golden cards).

The scenarios themselves are in tests/guideline_fixture_scenarios.py, which writes them.
Dates are relative ("@now-30d"), rolled at load time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
PID = "fx-patient"

CONDITIONS = {
    "dermatomyositis": (SCT, "396230008", "Dermatomyositis"),
    "polymyositis": (SCT, "31384009", "Polymyositis"),
    "spasm": (SCT, "45352006", "Muscle spasm"),
    "myocarditis": (SCT, "50920009", "Myocarditis"),
    "calcinosis": (ICD10CM, "L94.2", "Calcinosis cutis"),
    "hypertension": (SCT, "38341003", "Hypertensive disorder"),
}
DRUGS = {
    "diazepam": ("3322", "Diazepam 5 MG Oral Tablet"),
    "lorazepam": ("6470", "Lorazepam 1 MG Oral Tablet"),
    "acetaminophen": ("161", "Acetaminophen 500 MG Oral Tablet"),
    "prednisone": ("8640", "predniSONE 20 MG Oral Tablet"),
    "methotrexate": ("6851", "Methotrexate 25 MG/ML Injectable Solution"),
    "mycophenolate": ("68149", "Mycophenolate mofetil 500 MG Oral Tablet"),
    "cyclobenzaprine": ("21949", "Cyclobenzaprine 10 MG Oral Tablet"),
    "methocarbamol": ("6845", "Methocarbamol 500 MG Oral Tablet"),
    "naproxen": ("7258", "Naproxen 500 MG Oral Tablet"),
    "ibuprofen": ("5640", "Ibuprofen 400 MG Oral Tablet"),
    "midazolam": ("6960", "midazolam 1 MG/ML Injectable Solution"),
    "rituximab": ("121191", "rituximab 10 MG/ML Injectable Solution"),
    "cyclophosphamide": ("3002", "cyclophosphamide 500 MG Injection"),
    "tofacitinib": ("1357536", "tofacitinib 5 MG Oral Tablet"),
    "ivig": (None, "Immune globulin intravenous (human) 10% solution"),
}
LABS = {
    "ck": ("2157-6", "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "aldolase": ("1761-6", "Aldolase [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "ast": ("1920-8", "AST [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "alt": ("1742-6", "ALT [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "ldh": ("14804-9", "LDH [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "esr": ("4537-7", "ESR by Westergren method", "mm/h"),
    "crp": ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L"),
    "troponin": ("10839-9", "Troponin I.cardiac [Mass/volume] in Serum or Plasma", "ng/L"),
    "troponin_t_hs": (
        "67151-1",
        "Troponin T.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method",
        "ng/L",
    ),
    "weight": ("29463-7", "Body weight", "kg"),
    "glucose": ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL"),
    "hba1c": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%"),
}
TEXT_RESULTS = {
    "ecg": ("11524-6", "EKG study", "Sinus rhythm, no conduction abnormality"),
    "anti_pmscl": ("105554-0", "PM-Scl-100 Ab", "Negative"),
    "anti_u1rnp": ("29374-6", "U1 small nuclear RNP Ab", "Negative"),
    "anti_la": ("17791-5", "SSB Ab", "Negative"),
    "anti_ro": ("17792-3", "SSA Ab", "Negative"),
    "anti_sm": ("11090-8", "Sm Ab", "Negative"),
}
ROUTES = {
    "oral": ("26643006", "Oral route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "intravenous": ("47625008", "Intravenous route"),
}


class Patient:
    """Accumulates one fixture patient's resources."""

    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = [
            {
                "resourceType": "Patient",
                "id": PID,
                "gender": "female",
                "birthDate": "@today-52y",
                "name": [{"family": "Fixture", "given": ["Pat"]}],
            }
        ]
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def condition(self, kind: str, status: str = "active") -> Patient:
        system, code, display = CONDITIONS[kind]
        self.resources.append(
            {
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
                    "coding": [{"system": system, "code": code, "display": display}],
                    "text": display,
                },
                "subject": {"reference": f"Patient/{PID}"},
                "onsetDateTime": "@now-120d",
                "recordedDate": "@now-120d",
            }
        )
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

    def text_result(self, kind: str, days_ago: int) -> Patient:
        code, display, text = TEXT_RESULTS[kind]
        self.resources.append(
            {
                "resourceType": "Observation",
                "id": self._id(f"{kind.replace('_', '')}-"),
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "subject": {"reference": f"Patient/{PID}"},
                "effectiveDateTime": f"@now-{days_ago}d",
                "valueString": text,
            }
        )
        return self

    def blood_pressure(self, systolic: float, diastolic: float, days_ago: int) -> Patient:
        def component(code: str, display: str, value: float) -> dict[str, Any]:
            return {
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "valueQuantity": {
                    "value": value,
                    "unit": "mm[Hg]",
                    "system": UCUM,
                    "code": "mm[Hg]",
                },
            }

        self.resources.append(
            {
                "resourceType": "Observation",
                "id": self._id("bp-"),
                "status": "final",
                "code": {
                    "coding": [
                        {"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}
                    ]
                },
                "subject": {"reference": f"Patient/{PID}"},
                "effectiveDateTime": f"@now-{days_ago}d",
                "component": [
                    component("8480-6", "Systolic blood pressure", systolic),
                    component("8462-4", "Diastolic blood pressure", diastolic),
                ],
            }
        )
        return self

    def workup(self, days_ago: int = 20, ck: float = 160) -> Patient:
        """The complete ASSESS-1 work-up, all within the look-back window."""
        for kind, value in (
            ("ck", ck),
            ("aldolase", 6),
            ("ast", 30),
            ("alt", 28),
            ("ldh", 200),
            ("esr", 12),
            ("crp", 4),
            ("troponin", 5),
        ):
            self.lab(kind, value, days_ago)
        for kind in TEXT_RESULTS:
            self.text_result(kind, days_ago)
        return self

    def med(self, drug: str, days_ago: int = 10, status: str = "active", **dosage: Any) -> Patient:
        self.resources.append(
            medication_request(self._id("med"), drug, status, f"@now-{days_ago}d", **dosage)
        )
        return self

    def administration(self, drug: str, days_ago: int, status: str = "completed") -> Patient:
        """A MedicationAdministration (an infusion given `days_ago`)."""
        res: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "id": self._id("admin"),
            "status": status,
            "medicationCodeableConcept": drug_concept(drug),
            "subject": {"reference": f"Patient/{PID}"},
            "effectiveDateTime": f"@now-{days_ago}d",
        }
        self.resources.append(res)
        return self

    def statement(self, drug: str, status: str, started: int, ended: int | None = None) -> Patient:
        """A MedicationStatement: taken from `started` days ago (to `ended` days ago)."""
        period: dict[str, str] = {"start": f"@now-{started}d"}
        if ended is not None:
            period["end"] = f"@now-{ended}d"
        self.resources.append(
            {
                "resourceType": "MedicationStatement",
                "id": self._id("stmt"),
                "status": status,
                "medicationCodeableConcept": drug_concept(drug),
                "subject": {"reference": f"Patient/{PID}"},
                "effectivePeriod": period,
            }
        )
        return self

    def allergy(self, drug: str) -> Patient:
        code, _ = DRUGS[drug]
        self.resources.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": self._id("allergy"),
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "type": "intolerance",
                "category": ["medication"],
                "code": {
                    "coding": [{"system": RXNORM, "code": code, "display": drug}],
                    "text": drug,
                },
                "patient": {"reference": f"Patient/{PID}"},
                "recordedDate": "@now-200d",
            }
        )
        return self

    def physio_referral(self) -> Patient:
        self.resources.append(
            {
                "resourceType": "ServiceRequest",
                "id": self._id("sr"),
                "status": "active",
                "intent": "order",
                "code": {
                    "coding": [
                        {
                            "system": SCT,
                            "code": "306170007",
                            "display": "Referral to physiotherapy service",
                        }
                    ]
                },
                "subject": {"reference": f"Patient/{PID}"},
                "authoredOn": "@now-5d",
            }
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


def drug_concept(drug: str) -> dict[str, Any]:
    """medicationCodeableConcept: RxNorm ingredient coding (when known) and the product name."""
    code, text = DRUGS[drug]
    coding = [{"system": RXNORM, "code": code, "display": drug}] if code else []
    return {"coding": coding, "text": text} if coding else {"text": text}


def medication_request(
    rid: str,
    drug: str,
    status: str,
    authored: str,
    *,
    mg: float = 0,
    freq: int = 1,
    per: float = 1,
    unit: str = "d",
    route: str = "oral",
    supply_days: int | None = None,
    tablets: int | None = None,
    reason: str | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """MedicationRequest; `tablets` doses in tablets with a dispense quantity instead of mg;
    `count` bounds the administrations (timing.repeat.count: 1 is a single dose)."""
    concept = drug_concept(drug)
    if drug == "methotrexate" and route == "oral":
        concept["text"] = "Methotrexate 2.5 MG Oral Tablet"
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "proposal" if status == "draft" else "order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{PID}"},
        "authoredOn": authored,
    }
    if reason:
        res["statusReason"] = {"text": reason}
    if mg or tablets:
        dose = (
            {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}
            if mg
            else {
                "value": 1,
                "unit": "tablet",
                "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                "code": "TAB",
            }
        )
        repeat: dict[str, Any] = {"frequency": freq, "period": per, "periodUnit": unit}
        if count is not None:
            repeat["count"] = count
        res["dosageInstruction"] = [
            {
                "timing": {"repeat": repeat},
                "route": {
                    "coding": [
                        {"system": SCT, "code": ROUTES[route][0], "display": ROUTES[route][1]}
                    ]
                },
                "doseAndRate": [{"doseQuantity": dose}],
            }
        ]
    dispense: dict[str, Any] = {}
    if supply_days is not None:
        dispense["expectedSupplyDuration"] = {
            "value": supply_days,
            "unit": "days",
            "system": UCUM,
            "code": "d",
        }
    if tablets:
        dispense["quantity"] = {
            "value": tablets,
            "unit": "tablet",
            "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
            "code": "TAB",
        }
    if dispense:
        res["dispenseRequest"] = dispense
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


def with_failed_prefetch(
    request: dict[str, Any],
    patient: Patient,
    *failed: str,
) -> dict[str, Any]:
    """Prefetch computed from the patient, with `failed` keys replaced by OperationOutcome."""
    from cds_service.fhir.search import InMemoryFhir
    from cds_service.fhir.templates import fill_template
    from cds_service.guideline.needs import PREFETCH

    store = InMemoryFhir(patient.resources)
    context = request["context"]
    prefetch = {key: store.query(fill_template(t, context)) for key, t in PREFETCH.items()}
    for key in failed:
        prefetch[key] = {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "timeout", "diagnostics": "lab system did not answer"}
            ],
        }
    return {**request, "prefetch": prefetch}


def draft(drug: str, rid: str = "draft1", **dosage: Any) -> dict[str, Any]:
    return medication_request(rid, drug, "draft", "@now", **dosage)


Action = tuple[str, str | None]  # ("delete", "MedicationRequest/x") | ("create", "ServiceRequest")


def card(
    rec: str,
    indicator: str,
    summary: str,
    suggestions: list[tuple[str, list[Action]]] | None = None,
) -> dict[str, Any]:
    """The golden projection: create/update name the resourceType, delete the resourceId."""
    out: dict[str, Any] = {"recommendationId": rec, "indicator": indicator, "summary": summary}
    if suggestions:
        out["suggestions"] = [
            {
                "label": label,
                "actions": [
                    {"type": t, "resourceId": r}
                    if t == "delete"
                    else {"type": t, "resourceType": r}
                    for t, r in actions
                ],
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
