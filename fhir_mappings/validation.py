"""fhir.resources R4B validation of the resources the rules need, after known-shape repairs."""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.memo import ContentMemo, memoize_by_content
from fhir_mappings.raw import is_datetime

# Fields that R4 defines as arrays but real clients send as a single object (the CDS Hooks
# order-sign example sends doseAndRate and the sandbox sends reasonCode as objects).
_LIST_FIELDS = {
    "MedicationRequest": (
        "dosageInstruction",
        "reasonCode",
        "reasonReference",
        "note",
        "category",
        "identifier",
        "basedOn",
        "insurance",
        "contained",
    ),
    "Observation": (
        "component",
        "referenceRange",
        "interpretation",
        "category",
        "note",
        "identifier",
        "performer",
        "basedOn",
        "partOf",
        "hasMember",
        "derivedFrom",
    ),
    "Condition": ("category", "note", "identifier", "bodySite", "evidence", "stage"),
    "AllergyIntolerance": ("category", "reaction", "note", "identifier"),
    "ServiceRequest": ("category", "reasonCode", "note", "identifier", "orderDetail"),
}
_DOSAGE_LIST_FIELDS = ("doseAndRate", "additionalInstruction", "maxDosePerPeriod")
_STU3_DOSE_FIELDS = ("doseQuantity", "doseRange", "rateQuantity", "rateRange", "rateRatio")


def _as_list(resource: dict[str, Any], key: str) -> None:
    if isinstance(resource.get(key), dict):
        resource[key] = [resource[key]]


def _repair_dosage(dosage: dict[str, Any]) -> dict[str, Any]:
    dosage = dict(dosage)
    for key in _DOSAGE_LIST_FIELDS:
        if key != "maxDosePerPeriod":
            _as_list(dosage, key)
    moved = {k: dosage.pop(k) for k in _STU3_DOSE_FIELDS if k in dosage}
    if moved and "doseAndRate" not in dosage:
        dosage["doseAndRate"] = [moved]
    return dosage


def repair(resource: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy with the documented real-world deviations turned into R4 shapes."""
    rtype = resource.get("resourceType")
    fixed = dict(resource)
    for key in _LIST_FIELDS.get(str(rtype), ()):
        _as_list(fixed, key)
    if rtype == "MedicationRequest":
        r5 = fixed.pop("medication", None)  # R5 CodeableReference
        if isinstance(r5, dict):
            if isinstance(r5.get("concept"), dict):
                fixed.setdefault("medicationCodeableConcept", r5["concept"])
            elif isinstance(r5.get("reference"), dict):
                fixed.setdefault("medicationReference", r5["reference"])
        if isinstance(fixed.get("dosageInstruction"), list):
            fixed["dosageInstruction"] = [
                _repair_dosage(d) if isinstance(d, dict) else d for d in fixed["dosageInstruction"]
            ]
    return fixed


# Observations (the bulk of a chart) are validated element by element on what the mapping
# reads, with the R4B element models: a whole Observation model costs ~60 us, its
# valueQuantity ~9 us. The code is matched as strings before, so it is not re-validated.
_OBSERVATION_STATUS = frozenset(
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)
_OBSERVATION_ELEMENTS: dict[str, tuple[str, bool]] = {  # element -> (R4B model, is a list)
    "valueQuantity": ("Quantity", False),
    "valueCodeableConcept": ("CodeableConcept", False),
    "valueRatio": ("Ratio", False),
    "dataAbsentReason": ("CodeableConcept", False),
    "effectivePeriod": ("Period", False),
    "interpretation": ("CodeableConcept", True),
    "referenceRange": ("ObservationReferenceRange", True),
    "component": ("ObservationComponent", True),
}
_OBSERVATION_STRINGS = ("id", "valueString", "effectiveDateTime", "effectiveInstant", "issued")


def _observation_problem(resource: dict[str, Any]) -> str | None:
    """Element-wise R4 check of the Observation elements the mapping reads."""
    if resource.get("status") not in _OBSERVATION_STATUS:
        return "invalid R4: status: not an Observation status"
    for key in _OBSERVATION_STRINGS:
        if key in resource and not isinstance(resource[key], str):
            return f"invalid R4: {key}: not a string"
    for key in ("effectiveDateTime", "effectiveInstant", "issued"):
        if key in resource and not is_datetime(resource[key]):
            return f"invalid R4: {key}: not a FHIR dateTime"
    for key, (model_name, is_list) in _OBSERVATION_ELEMENTS.items():
        if key not in resource:
            continue
        items = resource[key]
        if is_list and not isinstance(items, list):
            return f"invalid R4: {key}: not a list"
        for i, item in enumerate(items if is_list else [items]):
            problem = _element_problem(model_name, item)
            if problem:
                return f"invalid R4: {key}{f'.{i}' if is_list else ''}: {problem}"
    return None


@cache
def _model(name: str) -> Any:
    return get_fhir_model_class(name)


def _element_problem(model_name: str, value: Any) -> str | None:
    try:
        _model(model_name).model_validate(value)
    except ValueError as exc:
        return _errors(exc)
    except Exception as exc:  # fhir_core raises KeyError and others on odd shapes
        return type(exc).__name__
    return None


def _errors(exc: ValueError) -> str:
    """The first pydantic errors as 'location: message' (never the offending values)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in errors()[:3]
        )
    return str(exc)[:200]


# Building the R4B model costs ~0.1-0.2 ms a resource, and EHRs resend the same record on
# every chart open: the verdict is remembered per content digest (same bytes, same verdict).
VALIDATION_MEMO = ContentMemo()


@memoize_by_content(VALIDATION_MEMO)
def validation_problem(resource: dict[str, Any]) -> str | None:
    """None when the resource is valid R4 (R4B models); else a short reason without values."""
    if resource.get("resourceType") == "Observation":
        return _observation_problem(resource)
    try:
        model = get_fhir_model_class(str(resource.get("resourceType")))
    except (KeyError, ValueError, TypeError):
        return f"unknown resourceType {str(resource.get('resourceType'))[:40]!r}"
    try:
        model.model_validate(resource)
    except ValueError as exc:
        return f"invalid R4: {_errors(exc)}"
    except Exception as exc:  # fhir_core raises KeyError and others on odd shapes
        return f"invalid R4: {type(exc).__name__}"
    return None
