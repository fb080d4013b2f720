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


def _match(concept: Any, term: Terminology) -> tuple[ObservationKind | None, str | None]:
    for c in raw.codings(concept):
        if c.system and c.code:
            hit = term.observation_codes.get((c.system.strip(), c.code.strip()))
            if hit is not None:
                return hit, c.code
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
        dt = raw.parse_datetime(resource.get(key))
        if dt:
            return dt
    period = raw.obj(resource, "effectivePeriod")
    dt = raw.parse_datetime(period.get("end")) or raw.parse_datetime(period.get("start"))
    return dt or raw.parse_datetime(resource.get("issued"))


def _reference_range(
    resource: dict[str, Any], kind: ObservationKind, term: Terminology
) -> ReferenceRange | None:
    quantity = term.quantities[kind.quantity]
    for rr in raw.objs(resource, "referenceRange"):
        bounds: list[float | None] = []
        unit: str | None = None
        for side in ("low", "high"):
            q = raw.obj(rr, side)
            value = raw.number(q, "value")
            if value is None:
                bounds.append(None)
                continue
            n = normalise(quantity, value, raw.string(q, "code"), raw.string(q, "unit"))
            bounds.append(n.value)
            unit = unit or n.unit
        if bounds[0] is not None or bounds[1] is not None:
            return ReferenceRange(bounds[0], bounds[1], unit)
    return None


def _range_unit(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    for rr in raw.objs(resource, "referenceRange"):
        for side in ("high", "low"):
            q = raw.obj(rr, side)
            if raw.string(q, "code") or raw.string(q, "unit"):
                return raw.string(q, "code"), raw.string(q, "unit")
    return None, None


def _value(
    holder: dict[str, Any], parent: dict[str, Any], kind: ObservationKind, term: Terminology
) -> tuple[dict[str, Any], str | None]:
    """Measurement fields from value[x]; second item is why the value is unusable."""
    quantity = term.quantities[kind.quantity]
    q = raw.obj(holder, "valueQuantity")
    if q:
        value = raw.number(q, "value")
        if value is None:
            return {}, "valueQuantity has no numeric value"
        code = raw.string(q, "code") if raw.string(q, "system") in (None, UCUM) else None
        n = normalise(quantity, value, code, raw.string(q, "unit"))
        fields = {
            "value": n.value,
            "unit": n.unit,
            "comparator": raw.string(q, "comparator"),
            "original_value": value,
            "original_unit": raw.string(q, "code") or raw.string(q, "unit"),
        }
        return fields, n.problem
    text = raw.string(holder, "valueString")
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
    ratio = raw.obj(holder, "valueRatio")
    if ratio:
        num = raw.number(raw.obj(ratio, "numerator"), "value")
        den = raw.number(raw.obj(ratio, "denominator"), "value")
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
    interp = tuple(
        c.code for i in raw.objs(holder, "interpretation") for c in raw.codings(i) if c.code
    )
    m = Measurement(
        kind=kind.kind,
        effective=when,
        resource_id=raw.string(parent, "id"),
        reference_range=_reference_range(holder, kind, term)
        or _reference_range(parent, kind, term),
        interpretation=interp,
        status=raw.string(parent, "status"),
        analyte=kind.analyte,
        code=code,
        unusable_reason=problem,
        **fields,
    )
    return m, (f"{kind.kind}: {problem}" if problem else None)


def map_observation(
    resource: dict[str, Any], term: Terminology
) -> tuple[list[Measurement], list[MappingIssue]]:
    """All measurements (own value and matching components) of one relevant Observation."""
    ref = f"Observation/{raw.string(resource, 'id') or '?'}"
    status = raw.string(resource, "status")
    if status in EXCLUDED_STATUSES:
        return [], [MappingIssue(ref, f"ignored: status {status}")]
    when = _effective(resource)
    if when is None:
        return [], [MappingIssue(ref, "ignored: no effective time or issued date")]
    out: list[Measurement] = []
    issues: list[MappingIssue] = []
    holders: list[tuple[dict[str, Any], Any]] = [(resource, resource.get("code"))]
    holders += [(c, c.get("code")) for c in raw.objs(resource, "component")]
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
