"""FHIR R4 resources the suggestions create or update (plain dicts; no FHIR library here)."""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta
from typing import Any

from cds_service.guideline.knowledge import CodeRef, Knowledge
from fhir_mappings.dates import parse_fhir_date

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


_DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
# R4 elements of MedicationRequest (and its Dosage/Timing) with cardinality 0..*: real clients
# (the CDS Hooks Sandbox: `reasonCode`) send some as one object, which R4 JSON forbids.
_LIST_ELEMENTS = {
    "MedicationRequest": (
        "identifier",
        "category",
        "supportingInformation",
        "reasonCode",
        "reasonReference",
        "basedOn",
        "insurance",
        "note",
        "dosageInstruction",
        "detectedIssue",
        "eventHistory",
    ),
    "Dosage": ("additionalInstruction", "doseAndRate"),
    "Timing": ("event",),
    "Timing.repeat": ("dayOfWeek", "timeOfDay", "when"),
}


def _listed(node: dict[str, Any], kind: str) -> None:
    for name in _LIST_ELEMENTS[kind]:
        if name in node and not isinstance(node[name], list):
            node[name] = [node[name]]


def draft_copy(draft: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a client's draft for an update suggestion, single objects put in lists."""
    copied = copy.deepcopy(draft)
    _listed(copied, "MedicationRequest")
    for dosage in copied.get("dosageInstruction") or []:
        if not isinstance(dosage, dict):
            continue
        _listed(dosage, "Dosage")
        timing = dosage.get("timing")
        if isinstance(timing, dict):
            _listed(timing, "Timing")
            if isinstance(timing.get("repeat"), dict):
                _listed(timing["repeat"], "Timing.repeat")
    return copied


_PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1, "wk": 7, "mo": 30, "a": 365}


def week_based(draft: dict[str, Any]) -> bool:
    """Dosed by the week (dayOfWeek, or a period of a week or more), not day by day."""
    for dosage in draft.get("dosageInstruction") or []:
        timing = dosage.get("timing") if isinstance(dosage, dict) else None
        repeat = timing.get("repeat") if isinstance(timing, dict) else None
        if not isinstance(repeat, dict):
            continue
        if repeat.get("dayOfWeek"):
            return True
        period, unit = repeat.get("period"), repeat.get("periodUnit")
        if isinstance(period, int | float) and period * _PERIOD_DAYS.get(str(unit), 0) >= 7:
            return True
    return False


def weekly(draft: dict[str, Any], doses: int = 1) -> tuple[dict[str, Any], str | None]:
    """IS-2: the whole draft with its doses on one day a week; returns the day named, if any.

    One dose: once weekly (on the order's first dayOfWeek if it had one). Several doses: that
    many on one day (the order's first dayOfWeek, else Monday), keeping its times of day when
    they match the number of doses.
    """
    updated = draft_copy(draft)
    day_named: str | None = None
    for dosage in updated.get("dosageInstruction") or []:
        if not isinstance(dosage, dict):
            continue
        timing = dosage.setdefault("timing", {})
        timing.pop("code", None)
        old = timing.get("repeat") if isinstance(timing.get("repeat"), dict) else {}
        days = [d for d in old.get("dayOfWeek") or [] if d in _DAY_NAMES]
        keep = {k: old[k] for k in ("boundsDuration", "boundsPeriod", "boundsRange") if k in old}
        times = {k: old[k] for k in ("timeOfDay", "when") if isinstance(old.get(k), list)}
        if doses == 1:
            repeat = {**keep, "frequency": 1, "period": 1, "periodUnit": "wk"}
            if days:
                repeat["dayOfWeek"] = [days[0]]
                day_named = _DAY_NAMES[days[0]]
        else:
            day = days[0] if days else "mon"
            day_named = _DAY_NAMES[day] + ("" if days else "; change the day as needed")
            repeat = {
                **keep,
                "frequency": doses,
                "period": 1,
                "periodUnit": "d",
                "dayOfWeek": [day],
            }
            for key, values in times.items():
                if len(values) == doses:
                    repeat[key] = values
        timing["repeat"] = repeat
        if "text" in dosage:
            change = "once weekly" if doses == 1 else "one day a week"
            dosage["text"] = f"{dosage['text']} (changed to {change})"
    return updated, day_named


def shortened(
    draft: dict[str, Any], days: int, per_day_units: float | None
) -> tuple[dict[str, Any], list[str]]:
    """CAU-1: the whole draft with its course limited to `days`; returns what changed."""
    updated = draft_copy(draft)
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
    """A Period end `days` after `start`: a date for a date (`2024-05` starts May 1), else a
    dateTime in the zone `start` was written in."""
    parsed = parse_fhir_date(start)
    if parsed is None:
        return start
    end = parsed.start + timedelta(days=days)
    if not parsed.has_time:
        return end.date().isoformat()
    return parsed.written_zone(end).isoformat()
