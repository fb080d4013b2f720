"""MedicationAdministration / MedicationStatement -> Medication: treatment history.

Infusions (IVIG, rituximab, cyclophosphamide) are often recorded only as administrations,
and home medications only as statements. Both are read as a MedicationRequest-like view so
the drug is resolved and classified exactly as an order is, then marked with their source
and the period in which the drug was given.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fhir_mappings import raw, shapes
from fhir_mappings.domain import MappingIssue, Medication
from fhir_mappings.medications import MedicationIndex, map_medication_request
from fhir_mappings.terminology import Terminology

HISTORY_TYPES = frozenset({"MedicationAdministration", "MedicationStatement"})
# Statuses that say the drug was NOT given / taken, or the record is void.
_NOT_GIVEN = {
    "MedicationAdministration": frozenset({"not-done", "entered-in-error"}),
    "MedicationStatement": frozenset({"not-taken", "entered-in-error"}),
}


def history_exclusion(resource: dict[str, Any]) -> str | None:
    """Why an administration or statement says nothing about treatment given (None if it does)."""
    rtype = str(resource.get("resourceType"))
    status = raw.string(resource, "status")
    if status in _NOT_GIVEN.get(rtype, frozenset()):
        return f"status {status}"
    return None


def _period(resource: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """effective[x] as (start, end); a dateTime is both."""
    when = raw.parse_datetime(resource.get("effectiveDateTime"))
    if when is not None:
        return when, when
    period = raw.obj(resource, "effectivePeriod")
    return raw.parse_datetime(period.get("start")), raw.parse_datetime(period.get("end"))


def _as_request(resource: dict[str, Any], start: datetime | None) -> shapes.MedicationOrder:
    """The parts a MedicationRequest mapping reads: drug, status, dosage, start."""
    view: dict[str, Any] = {"resourceType": "MedicationRequest"}
    for key in ("id", "status", "medicationCodeableConcept", "medicationReference", "contained"):
        if key in resource:
            view[key] = resource[key]
    if resource.get("resourceType") == "MedicationAdministration":
        dosage = raw.obj(resource, "dosage")
        line: dict[str, Any] = {}
        if raw.obj(dosage, "route"):
            line["route"] = dosage["route"]
        if raw.obj(dosage, "dose"):
            line["doseAndRate"] = [{"doseQuantity": dosage["dose"]}]
        if raw.string(dosage, "text"):
            line["text"] = dosage["text"]
        if line:
            view["dosageInstruction"] = [line]
    elif raw.objs(resource, "dosage"):
        view["dosageInstruction"] = raw.objs(resource, "dosage")
    authored = start or raw.parse_datetime(resource.get("dateAsserted"))
    if authored is not None:
        view["authoredOn"] = authored.isoformat()
    # The record was validated against its own R4 type; typed as the request mapping reads it.
    return shapes.convert(view, shapes.MedicationOrder)


def map_history(
    resource: dict[str, Any], index: MedicationIndex, term: Terminology, now: datetime
) -> tuple[Medication, list[MappingIssue]]:
    """A (validated) administration or statement as a classified Medication."""
    rtype = str(resource.get("resourceType"))
    start, end = _period(resource)
    med, issues = map_medication_request(_as_request(resource, start), index, term, now)
    rid = raw.string(resource, "id")
    reference = f"{rtype}/{rid}" if rid else None
    issues = [
        MappingIssue(reference or f"{rtype}/?", i.reason)
        if i.resource.startswith("MedicationRequest/")
        else i
        for i in issues
    ]
    return (
        replace(
            med,
            reference=reference,
            source=rtype,
            period_start=start,
            period_end=end,
            # An administration is one given dose; "completed" is its normal end state.
            single_dose=rtype == "MedicationAdministration",
        ),
        issues,
    )
