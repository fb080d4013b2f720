"""FHIR R4 resources the suggestions create or update (plain dicts; no FHIR library here)."""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta
from typing import Any

from cds_service.guideline.knowledge import CodeRef, Knowledge

UCUM = "http://unitsofmeasure.org"


def _subject(patient_id: str | None) -> dict[str, str] | None:
    return {"reference": f"Patient/{patient_id}"} if patient_id else None


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    number: float | int = int(value) if float(value).is_integer() else value
    return {"value": number, "unit": unit, "system": UCUM, "code": code}


def medication_request(
    knowledge: Knowledge,
    *,
    drug: str,
    mg: float,
    route: str,
    period: int,
    period_unit: str,
    text: str,
    patient_id: str | None,
    now: datetime,
    note: str | None = None,
) -> dict[str, Any]:
    """A draft proposal MedicationRequest with a coded drug and structured dosage."""
    route_code: CodeRef = knowledge.routes[route]
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": {
            "coding": [knowledge.medications[drug].as_fhir()],
            "text": drug,
        },
        "authoredOn": now.replace(microsecond=0).isoformat(),
        "dosageInstruction": [
            {
                "text": text,
                "timing": {"repeat": {"frequency": 1, "period": period, "periodUnit": period_unit}},
                "route": {"coding": [route_code.as_fhir()], "text": route_code.display},
                "doseAndRate": [{"doseQuantity": _quantity(mg, "mg", "mg")}],
            }
        ],
    }
    if note:
        resource["note"] = [{"text": note}]
    subject = _subject(patient_id)
    if subject:
        resource["subject"] = subject
    return resource


def service_request(
    code: CodeRef, *, patient_id: str | None, now: datetime, reason: str, category: str | None
) -> dict[str, Any]:
    """A draft proposal ServiceRequest (lab, ECG or referral)."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {"coding": [code.as_fhir()], "text": code.display},
        "authoredOn": now.replace(microsecond=0).isoformat(),
        "reasonCode": [{"text": reason}],
    }
    if category:
        resource["category"] = [{"text": category}]
    subject = _subject(patient_id)
    if subject:
        resource["subject"] = subject
    return resource


def weekly(draft: dict[str, Any]) -> dict[str, Any]:
    """IS-2: the whole draft with every dosage's timing set to once weekly."""
    updated = copy.deepcopy(draft)
    for dosage in updated.get("dosageInstruction") or []:
        if not isinstance(dosage, dict):
            continue
        timing = dosage.setdefault("timing", {})
        timing.pop("code", None)
        repeat = timing.setdefault("repeat", {})
        for key in ("frequencyMax", "periodMax", "timeOfDay", "when", "offset"):
            repeat.pop(key, None)
        repeat.update({"frequency": 1, "period": 1, "periodUnit": "wk"})
        if "text" in dosage:
            dosage["text"] = f"{dosage['text']} (changed to once weekly)"
    return updated


def shortened(
    draft: dict[str, Any], days: int, per_day_units: float | None
) -> tuple[dict[str, Any], list[str]]:
    """CAU-1: the whole draft with its course limited to `days`; returns what changed."""
    updated = copy.deepcopy(draft)
    changes: list[str] = []
    dispense = updated.setdefault("dispenseRequest", {})
    dispense["expectedSupplyDuration"] = {
        "value": days,
        "unit": "days",
        "system": UCUM,
        "code": "d",
    }
    changes.append(f"expected supply duration {days} days")
    if dispense.get("numberOfRepeatsAllowed"):
        dispense["numberOfRepeatsAllowed"] = 0
        changes.append("no repeats")
    quantity = dispense.get("quantity")
    if isinstance(quantity, dict) and per_day_units:
        quantity["value"] = math.ceil(per_day_units * days)
        changes.append(f"quantity {quantity['value']} {quantity.get('unit', '')}".strip())
    validity = dispense.get("validityPeriod")
    if isinstance(validity, dict) and validity.get("start"):
        validity["end"] = _plus_days(validity["start"], days)
        changes.append(f"validity period ending {validity['end']}")
    for dosage in updated.get("dosageInstruction") or []:
        repeat = (dosage.get("timing") or {}).get("repeat") if isinstance(dosage, dict) else None
        if not isinstance(repeat, dict):
            continue
        if "boundsDuration" in repeat:
            repeat["boundsDuration"] = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
            changes.append(f"dosage bounds {days} days")
        bounds = repeat.get("boundsPeriod")
        if isinstance(bounds, dict) and bounds.get("start"):
            bounds["end"] = _plus_days(bounds["start"], days)
            changes.append(f"dosage period ending {bounds['end']}")
    return updated, changes


def _plus_days(start: str, days: int) -> str:
    try:
        begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        return start
    end = begin + timedelta(days=days)
    return end.date().isoformat() if len(start) == 10 else end.isoformat()
