"""Observation -> Measurement: value sets by system+code, units, comparators, components."""

from __future__ import annotations

import re
from collections.abc import Container
from datetime import datetime
from typing import Any

from fhir_mappings import raw
from fhir_mappings.domain import MappingIssue, Measurement, ReferenceRange
from fhir_mappings.terminology import ObservationKind, Terminology
from fhir_mappings.units import UCUM, normalise

# entered-in-error and cancelled results are not results; registered has no value yet.
EXCLUDED_STATUSES = frozenset({"entered-in-error", "cancelled", "registered"})
_VALUE_STRING = re.compile(r"^\s*(<=|>=|<|>|=)?\s*([-+]?\d+(?:[.,]\d+)?)\s*(\S.*)?$")


# Past validation (fhir_mappings.shapes) an Observation's elements have their R4 types: the
# readers below take that for granted, so a chart of 10,000 results maps without re-checking
# every element's type (issue 8). Elements the shapes do not declare are still checked.
def _text(value: Any) -> str | None:
    """A string element, None when absent, null or blank."""
    return value if type(value) is str and value and not value.isspace() else None


def _number(value: Any) -> float | None:
    kind = type(value)
    return value if kind is float else float(value) if kind is int else None


def _codings(concept: Any) -> list[dict[str, Any]]:
    """A CodeableConcept's codings, or a bare Coding sent in its place (tolerated)."""
    if not concept:
        return []
    coding = concept.get("coding")
    if coding:
        return coding
    return [concept] if "code" in concept or "system" in concept else []


def _match(concept: Any, term: Terminology) -> tuple[ObservationKind | None, str | None]:
    for c in _codings(concept):
        system, code = _text(c.get("system")), _text(c.get("code"))
        if system and code:
            hit = term.observation_codes.get((system.strip(), code.strip()))
            if hit is not None:
                return hit, code
    return None, None


def _names_any(concept: Any, *tables: Container[tuple[str, str]]) -> bool:
    """Whether a coding of the concept is in one of the tables (as _match, without Codings)."""
    codings = raw.objs(concept, "coding")
    if not codings and isinstance(concept, dict) and ("code" in concept or "system" in concept):
        codings = [concept]
    for c in codings:
        system, code = c.get("system"), c.get("code")
        if isinstance(system, str) and isinstance(code, str):
            key = (system.strip(), code.strip())
            if any(key in table for table in tables):
                return True
    return False


def is_relevant(resource: dict[str, Any], term: Terminology) -> bool:
    """Cheap raw-JSON filter: only Observations the rules need are parsed further."""
    if _names_any(resource.get("code"), term.observation_codes, term.panel_codes):
        return True
    return any(
        _names_any(c.get("code"), term.observation_codes) for c in raw.objs(resource, "component")
    )


def _effective(resource: dict[str, Any]) -> datetime | None:
    for key in ("effectiveDateTime", "effectiveInstant"):
        value = resource.get(key)
        if value is not None:
            dt = raw.parse_datetime(value)
            if dt:
                return dt
    period = resource.get("effectivePeriod")
    if period:
        dt = raw.parse_datetime(period.get("end")) or raw.parse_datetime(period.get("start"))
        if dt:
            return dt
    return raw.parse_datetime(resource.get("issued"))


def _reference_range(
    resource: dict[str, Any], kind: ObservationKind, term: Terminology
) -> ReferenceRange | None:
    ranges = resource.get("referenceRange")
    if not ranges:
        return None
    quantity = term.quantities[kind.quantity]
    for rr in ranges:
        bounds: list[float | None] = []
        unit: str | None = None
        for side in ("low", "high"):
            q = rr.get(side)
            value = _number(q.get("value")) if q else None
            if value is None:
                bounds.append(None)
                continue
            n = normalise(quantity, value, _text(q.get("code")), _text(q.get("unit")))
            bounds.append(n.value)
            unit = unit or n.unit
        if bounds[0] is not None or bounds[1] is not None:
            return ReferenceRange(bounds[0], bounds[1], unit)
    return None


def _range_unit(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    for rr in resource.get("referenceRange") or ():
        for side in ("high", "low"):
            q = rr.get(side) or {}
            code, unit = _text(q.get("code")), _text(q.get("unit"))
            if code or unit:
                return code, unit
    return None, None


def _value(
    holder: dict[str, Any], parent: dict[str, Any], kind: ObservationKind, term: Terminology
) -> tuple[dict[str, Any], str | None]:
    """Measurement fields from value[x]; second item is why the value is unusable."""
    quantity = term.quantities[kind.quantity]
    q = holder.get("valueQuantity")
    if q:
        value = _number(q.get("value"))
        if value is None:
            return {}, "valueQuantity has no numeric value"
        code, unit = _text(q.get("code")), _text(q.get("unit"))
        n = normalise(
            quantity, value, code if _text(q.get("system")) in (None, UCUM) else None, unit
        )
        fields = {
            "value": n.value,
            "unit": n.unit,
            "comparator": _text(q.get("comparator")),
            "original_value": value,
            "original_unit": code or unit,
        }
        return fields, n.problem
    text = _text(holder.get("valueString"))
    if text is not None:
        m = _VALUE_STRING.match(text)
        if not m or (m.group(3) or "").startswith((":", "/")):  # a titer "1:160" is text
            return {"value": None, "unit": None, "text": text}, None
        comparator, number, unit_text = m.groups()
        value = float(number.replace(",", "."))
        code, unit = (unit_text.strip(), unit_text.strip()) if unit_text else _range_unit(parent)
        n = normalise(quantity, value, code, unit)
        fields = {
            "value": n.value,
            "unit": n.unit,
            "comparator": comparator if comparator in ("<", "<=", ">", ">=") else None,
            "text": text,
            "original_value": value,
            "original_unit": code or unit,
        }
        return fields, n.problem
    ratio = holder.get("valueRatio")
    if ratio:
        num = _number((ratio.get("numerator") or {}).get("value"))
        den = _number((ratio.get("denominator") or {}).get("value"))
        shown = f"{num:g}:{den:g}" if num is not None and den is not None else None
        return {"value": None, "unit": None, "text": shown}, None
    concept = holder.get("valueCodeableConcept")
    if isinstance(concept, dict):
        return {"value": None, "unit": None, "text": raw.concept_text(concept)}, None
    for key in ("valueInteger", "valueBoolean"):
        if key in holder and not isinstance(holder[key], dict | list):
            return {"value": None, "unit": None, "text": str(holder[key])}, None
    if kind.quantity == "presence":
        return {"value": None, "unit": None, "text": None}, None
    return {}, "no value"


def _interpretation(holder: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for concept in holder.get("interpretation") or ():
        found += [code for c in _codings(concept) if (code := _text(c.get("code")))]
    return tuple(found)


def _measurement(
    holder: dict[str, Any],
    parent: dict[str, Any],
    kind: ObservationKind,
    code: str | None,
    when: datetime,
    term: Terminology,
) -> tuple[Measurement | None, str | None]:
    absent = holder.get("dataAbsentReason")
    if isinstance(absent, dict) and not any(k.startswith("value") for k in holder):
        return None, f"{kind.kind}: data absent ({raw.concept_text(absent) or 'no reason'})"
    fields, problem = _value(holder, parent, kind, term)
    if not fields:
        return None, f"{kind.kind}: {problem}"
    if problem:
        fields["value"] = None
    m = Measurement(
        kind=kind.kind,
        effective=when,
        resource_id=_text(parent.get("id")),
        reference_range=_reference_range(holder, kind, term)
        or _reference_range(parent, kind, term),
        interpretation=_interpretation(holder),
        status=_text(parent.get("status")),
        analyte=kind.analyte,
        code=code,
        unusable_reason=problem,
        **fields,
    )
    return m, (f"{kind.kind}: {problem}" if problem else None)


def map_observation(
    resource: dict[str, Any], term: Terminology
) -> tuple[list[Measurement], list[MappingIssue]]:
    """All measurements (own value and matching components) of one relevant, valid Observation."""
    ref = f"Observation/{_text(resource.get('id')) or '?'}"
    status = _text(resource.get("status"))
    if status in EXCLUDED_STATUSES:
        return [], [MappingIssue(ref, f"ignored: status {status}")]
    when = _effective(resource)
    if when is None:
        return [], [MappingIssue(ref, "ignored: no effective time or issued date")]
    out: list[Measurement] = []
    issues: list[MappingIssue] = []
    holders: list[tuple[dict[str, Any], Any]] = [(resource, resource.get("code"))]
    holders += [(c, c.get("code")) for c in resource.get("component") or ()]
    for holder, concept in holders:
        kind, code = _match(concept, term)
        if kind is None:
            continue
        m, problem = _measurement(holder, resource, kind, code, when, term)
        if m is not None:
            out.append(m)
        if problem:
            issues.append(MappingIssue(ref, problem))
    return out, issues


def is_study_report(resource: dict[str, Any], term: Terminology) -> bool:
    """A DiagnosticReport coded as a presence-only study of the value sets (an ECG)."""
    kind, _ = _match(resource.get("code"), term)
    return kind is not None and kind.quantity == "presence"


def map_study_report(
    resource: dict[str, Any], term: Terminology
) -> tuple[list[Measurement], list[MappingIssue]]:
    """The study as a value-less Measurement with the report's conclusion as text."""
    ref = f"DiagnosticReport/{raw.string(resource, 'id') or '?'}"
    status = raw.string(resource, "status")
    if status in EXCLUDED_STATUSES:
        return [], [MappingIssue(ref, f"ignored: status {status}")]
    kind, code = _match(resource.get("code"), term)
    when = _effective(resource)
    if kind is None or when is None:
        return [], [MappingIssue(ref, "ignored: no effective time or issued date")]
    m = Measurement(
        kind=kind.kind,
        value=None,
        unit=None,
        effective=when,
        resource_id=raw.string(resource, "id"),
        text=raw.string(resource, "conclusion"),
        status=status,
        code=code,
    )
    return [m], []
