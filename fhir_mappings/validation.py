"""fhir.resources R4B validation of the resources the rules need, after known-shape repairs."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.memo import ContentMemo, memoize_by_content

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


# Observations are validated on the elements the mapping reads (narrative, subject,
# encounter, category, performer... are not read, and validating them doubled the cost).
_OBSERVATION_READ = frozenset(
    {
        "resourceType",
        "id",
        "status",
        "code",
        "component",
        "issued",
        "referenceRange",
        "interpretation",
        "dataAbsentReason",
    }
)


def validated_part(resource: dict[str, Any]) -> dict[str, Any]:
    """The part of a resource that is validated: all of it, except for Observations."""
    if resource.get("resourceType") != "Observation":
        return resource
    return {
        k: v
        for k, v in resource.items()
        if k in _OBSERVATION_READ or k.startswith(("value", "effective"))
    }


# Building the R4B model costs ~0.1-0.2 ms a resource, and EHRs resend the same record on
# every chart open: the verdict is remembered per content digest (same bytes, same verdict).
VALIDATION_MEMO = ContentMemo()


@memoize_by_content(VALIDATION_MEMO)
def validation_problem(resource: dict[str, Any]) -> str | None:
    """None when the resource is valid R4 (R4B models); else a short reason without values."""
    try:
        model = get_fhir_model_class(str(resource.get("resourceType")))
    except (KeyError, ValueError, TypeError):
        return f"unknown resourceType {str(resource.get('resourceType'))[:40]!r}"
    try:
        model.model_validate(validated_part(resource))
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        if callable(errors):
            parts = [
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                for e in errors()[:3]
            ]
            return "invalid R4: " + "; ".join(parts)
        return f"invalid R4: {str(exc)[:200]}"
    except (TypeError, RecursionError, AttributeError) as exc:
        return f"invalid R4: {type(exc).__name__}"
    return None
