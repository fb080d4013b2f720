"""R4 validation of the resources the rules need, after known-shape repairs."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

import msgspec

from fhir_mappings.shapes import CHOICES, SHAPES, convert, decoder

T = TypeVar("T")

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
    """The documented real-world deviations turned into R4 shapes (a copy if any is found)."""
    rtype = resource.get("resourceType")
    lone = [k for k in _LIST_FIELDS.get(str(rtype), ()) if type(resource.get(k)) is dict]
    if not lone and rtype != "MedicationRequest":
        return resource  # the common case: nothing to repair, nothing copied
    fixed = dict(resource)
    for key in lone:
        fixed[key] = [fixed[key]]
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


@cache
def _model(name: str) -> Any:
    # fhir.resources (pydantic models, ~20 MiB) only for a type without a compiled shape.
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(name)


def model_errors(exc: ValueError) -> str:
    """The first pydantic errors as 'location: message' (never the offending values)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in errors()[:3]
        )
    return str(exc)[:200]


def checked(resource: dict[str, Any], shape: type[T]) -> tuple[T | None, str | None]:
    """(the resource in its R4 shape, None), or (None, why not) (fhir_mappings.shapes)."""
    for variants in CHOICES.get(shape.__name__, ()):
        found = variants.intersection(resource)
        if len(found) > 1:
            return None, f"invalid R4: only one of {', '.join(sorted(found))} may be present"
    try:
        return convert(resource, shape), None
    except msgspec.ValidationError as exc:
        return None, f"invalid R4: {_shape_error(str(exc))}"


def decoded_checked(data: Any, shape: type[T]) -> tuple[T | None, str | None]:
    """checked() straight from JSON bytes: typed and validated in one pass, no dict built."""
    try:
        return decoder(shape).decode(data), None
    except msgspec.ValidationError as exc:
        return None, f"invalid R4: {_shape_error(str(exc))}"


def _shape_error(message: str) -> str:
    """'path: message' from msgspec's 'message - at `$.path`', never quoting a value."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        text, where = message, "$`"
    if text.startswith("Invalid enum value"):
        text = "not a code of the required value set"
    path = where.rstrip("`").removeprefix("$").lstrip(".").replace("[", ".").replace("]", "")
    return f"{path or 'resource'}: {text}"


def validation_problem(resource: dict[str, Any]) -> str | None:
    """None when the resource is valid R4 where the mapping reads it; else a short reason."""
    rtype = resource.get("resourceType")
    shape = SHAPES.get(rtype) if isinstance(rtype, str) else None
    if shape is not None:
        return checked(resource, shape)[1]
    try:
        model = _model(str(rtype))
    except (KeyError, ValueError, TypeError):
        return f"unknown resourceType {str(rtype)[:40]!r}"
    try:
        model.model_validate(resource)
    except ValueError as exc:
        return f"invalid R4: {model_errors(exc)}"
    except Exception as exc:  # fhir_core raises KeyError and others on odd shapes
        return f"invalid R4: {type(exc).__name__}"
    return None
