"""FHIR R4 model checks of the resources a card suggests (MedicationRequest, ServiceRequest).

fhir.resources has no R4 package; its R4B models are used, whose MedicationRequest and
ServiceRequest are R4's. A model is imported on the first check, so processes that serve
only discovery, health or feedback never load it. A verdict is remembered per resource with
its well-formed `authoredOn`, patient reference and the plainly valid texts of its concepts,
notes and dosages blanked: suggestions that differ only there (a referral's reason quoting
the patient's CK) are checked once.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from typing import Any

import orjson

from fhir_mappings.dates import DAY, SECOND, parse_fhir_date, parse_start, plainly_valid
from fhir_mappings.memo import ContentMemo, keyed_digest
from fhir_mappings.validation import model_errors

_MODULES = {"MedicationRequest": "medicationrequest", "ServiceRequest": "servicerequest"}
VERDICTS = ContentMemo(size=4_096)
_AUTHORED = re.compile(rb'"authoredOn":"([^"\\]*)"')
_DAY, _SECOND = DAY.encode(), SECOND.encode()
_PATIENT = re.compile(rb'"reference":"Patient/[A-Za-z0-9.-]{1,64}"')
# Members whose items' `text` is an R4 string or markdown: CodeableConcept, Annotation, Dosage
# (a resource's own `text` is a Narrative object, and is never blanked).
_TEXT_HOLDERS = ("code", "medicationCodeableConcept")
_TEXT_LISTS = ("reasonCode", "category", "note", "dosageInstruction")


@cache
def _model(resource_type: str) -> Any:
    module = importlib.import_module(f"fhir.resources.R4B.{_MODULES[resource_type]}")
    return getattr(module, resource_type)


def _blank_authored(match: re.Match[bytes]) -> bytes:
    # Only a dateTime R4 accepts is blanked (a time needs its zone); others stay in the key.
    value = match.group(1).decode()
    if plainly_valid(value, date_only=True) and parse_start(value) is not None:
        # The forms the service writes (a zoned second, a day), without building a FhirDate.
        return b'"authoredOn":"' + (_DAY if len(value) == 10 else _SECOND) + b'"'
    parsed = parse_fhir_date(value)
    if parsed is None or (parsed.has_time and parsed.offset is None):
        return match.group(0)
    return b'"authoredOn":"' + parsed.precision.encode() + b'"'


def _plain(item: Any) -> bool:
    # Printable, not blank, no outer whitespace: valid as any R4 string or markdown.
    text = item.get("text") if isinstance(item, dict) else None
    return isinstance(text, str) and text.isprintable() and text.strip() == text != ""


def _texts_blanked(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with each plainly valid text of its concepts, notes and dosages as "-"."""
    out = resource
    for key in _TEXT_HOLDERS:
        if _plain(resource.get(key)):
            out = {**out, key: {**resource[key], "text": "-"}}
    for key in _TEXT_LISTS:
        items = resource.get(key)
        if isinstance(items, list) and any(_plain(item) for item in items):
            out = {**out, key: [{**i, "text": "-"} if _plain(i) else i for i in items]}
    return out


def _key(resource: dict[str, Any]) -> bytes | None:
    try:
        data = orjson.dumps(_texts_blanked(resource))
    except (TypeError, orjson.JSONEncodeError):
        return None
    data = _PATIENT.sub(b'"reference":"Patient/-"', _AUTHORED.sub(_blank_authored, data))
    return keyed_digest(data)


def _validate(resource: dict[str, Any]) -> str | None:
    try:
        _model(resource["resourceType"]).model_validate(resource)
    except ValueError as exc:
        return f"invalid R4 {resource['resourceType']}: {model_errors(exc)}"
    except Exception as exc:  # fhir_core raises KeyError and others on odd shapes
        return f"invalid R4 {resource['resourceType']}: {type(exc).__name__}"
    return None


def suggested_resource_problem(resource: Any) -> str | None:
    """None when a suggestion's resource is valid R4; else why not (never quoting values)."""
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if rtype not in _MODULES:
        return f"a suggestion may create only {' or '.join(_MODULES)}, not {str(rtype)[:40]!r}"
    key = _key(resource)
    if key is None:
        return _validate(resource)
    found, problem = VERDICTS.get(key)
    if not found:
        problem = _validate(resource)
        VERDICTS.put(key, problem)
    return problem
