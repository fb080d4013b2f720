"""Observation -> Measurement: value sets by system+code, units, comparators, components."""

from __future__ import annotations

import re
from collections.abc import Container
from datetime import datetime
from typing import Any

import msgspec

from fhir_mappings import raw, shapes
from fhir_mappings.domain import MappingIssue, Measurement, ReferenceRange
from fhir_mappings.terminology import ObservationKind, Terminology
from fhir_mappings.units import UCUM, normalise

# entered-in-error and cancelled results are not results; registered has no value yet.
EXCLUDED_STATUSES = frozenset({"entered-in-error", "cancelled", "registered"})
_VALUE_STRING = re.compile(r"^\s*(<=|>=|<|>|=)?\s*([-+]?\d+(?:[.,]\d+)?)\s*(\S.*)?$")


# An Observation is mapped from its compiled R4 shape (fhir_mappings.shapes.Observation):
# decoded straight from the request's bytes, or converted from JSON already decoded, it has
# its R4 types, so the readers below take them for granted.
def _text(value: Any) -> str | None:
    """A string element, None when absent, null or blank."""
    return value if type(value) is str and value and not value.isspace() else None


def _items(value: Any) -> list[Any]:
    """An array element, also when sent as one object (`list[X] | X` in the shapes)."""
    return value if type(value) is list else [] if value is None else [value]


def _codings(concept: shapes.CodeableConcept | None) -> list[Any]:
    """A CodeableConcept's codings, or the bare Coding sent in its place (tolerated)."""
    if concept is None:
        return []
    if concept.coding:
        return concept.coding
    return [concept] if concept.code is not None or concept.system is not None else []


def _concept_text(concept: shapes.CodeableConcept) -> str | None:
    """CodeableConcept.text, else the first coding display."""
    text = _text(concept.text)
    if text:
        return text
    for c in _codings(concept):
        if _text(c.display):
            return c.display
    return None


def _match(
    concept: shapes.CodeableConcept | None, term: Terminology
) -> tuple[ObservationKind | None, str | None]:
    for c in _codings(concept):
        system, code = _text(c.system), c.code  # a Code has no blank or outer whitespace
        if system and code:
            hit = term.observation_codes.get((system.strip(), code))
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


def _struct_names_any(concept: shapes.CodeableConcept | None, *tables: Any) -> bool:
    for c in _codings(concept):
        system, code = c.system, c.code
        if system is not None and code is not None:
            key = (system.strip(), code.strip())
            if any(key in table for table in tables):
                return True
    return False


def is_relevant_shape(obs: shapes.Observation, term: Terminology) -> bool:
    """is_relevant for an Observation already in its shape."""
    if _struct_names_any(obs.code, term.observation_codes, term.panel_codes):
        return True
    return any(_struct_names_any(c.code, term.observation_codes) for c in _items(obs.component))


def _effective(obs: shapes.Observation) -> datetime | None:
    for value in (obs.effectiveDateTime, obs.effectiveInstant):
        if value is not None:
            dt = raw.parse_datetime(value)
            if dt:
                return dt
    period = obs.effectivePeriod
    if period is not None:
        dt = raw.parse_end(period.end) or raw.parse_datetime(period.start)
        if dt:
            return dt
    return raw.parse_datetime(obs.issued)


def _reference_range(
    holder: shapes._Valued, kind: ObservationKind, term: Terminology
) -> ReferenceRange | None:
    ranges = _items(holder.referenceRange)
    if not ranges:
        return None
    quantity = term.quantities[kind.quantity]
    for rr in ranges:
        bounds: list[float | None] = []
        unit: str | None = None
        for q in (rr.low, rr.high):
            if q is None or q.value is None:
                bounds.append(None)
                continue
            n = normalise(quantity, q.value, q.code, _text(q.unit))
            bounds.append(n.value)
            unit = unit or n.unit
        if bounds[0] is not None or bounds[1] is not None:
            return ReferenceRange(bounds[0], bounds[1], unit)
    return None


def _range_unit(obs: shapes._Valued) -> tuple[str | None, str | None]:
    for rr in _items(obs.referenceRange):
        for q in (rr.high, rr.low):
            if q is not None:
                code, unit = q.code, _text(q.unit)
                if code or unit:
                    return code, unit
    return None, None


_NO_QUANTITY = shapes.Quantity()
_NO_RATIO = shapes.Ratio()


def _value(
    holder: shapes._Valued, parent: shapes.Observation, kind: ObservationKind, term: Terminology
) -> tuple[dict[str, Any], str | None]:
    """Measurement fields from value[x]; second item is why the value is unusable."""
    quantity = term.quantities[kind.quantity]
    q = holder.valueQuantity
    if q is not None and q != _NO_QUANTITY:
        if q.value is None:
            return {}, "valueQuantity has no numeric value"
        code, unit = q.code, _text(q.unit)
        n = normalise(quantity, q.value, code if _text(q.system) in (None, UCUM) else None, unit)
        fields = {
            "value": n.value,
            "unit": n.unit,
            "comparator": q.comparator,
            "original_value": q.value,
            "original_unit": code or unit,
        }
        return fields, n.problem
    text = _text(holder.valueString)
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
    ratio = holder.valueRatio
    if ratio is not None and ratio != _NO_RATIO:
        num = ratio.numerator.value if ratio.numerator else None
        den = ratio.denominator.value if ratio.denominator else None
        shown = f"{num:g}:{den:g}" if num is not None and den is not None else None
        return {"value": None, "unit": None, "text": shown}, None
    if holder.valueCodeableConcept is not None:
        return {
            "value": None,
            "unit": None,
            "text": _concept_text(holder.valueCodeableConcept),
        }, None
    for other in (holder.valueInteger, holder.valueBoolean):
        if other is not None:
            return {"value": None, "unit": None, "text": str(other)}, None
    if kind.quantity == "presence":
        return {"value": None, "unit": None, "text": None}, None
    return {}, "no value"


def _has_value(holder: shapes._Valued) -> bool:
    return any(getattr(holder, name) is not None for name in shapes.VALUES)


def _interpretation(holder: shapes._Valued) -> tuple[str, ...]:
    found: list[str] = []
    for concept in _items(holder.interpretation):
        found += [c.code for c in _codings(concept) if c.code]
    return tuple(found)


def _measurement(
    holder: shapes._Valued,
    parent: shapes.Observation,
    kind: ObservationKind,
    code: str | None,
    when: datetime,
    term: Terminology,
) -> tuple[Measurement | None, str | None]:
    absent = holder.dataAbsentReason
    if absent is not None and not _has_value(holder):
        return None, f"{kind.kind}: data absent ({_concept_text(absent) or 'no reason'})"
    fields, problem = _value(holder, parent, kind, term)
    if not fields:
        return None, f"{kind.kind}: {problem}"
    if problem:
        fields["value"] = None
    m = Measurement(
        kind=kind.kind,
        effective=when,
        resource_id=parent.id,  # an Id: never blank
        reference_range=_reference_range(holder, kind, term)
        or _reference_range(parent, kind, term),
        interpretation=_interpretation(holder),
        status=parent.status,
        analyte=kind.analyte,
        code=code,
        unusable_reason=problem,
        **fields,
    )
    return m, (f"{kind.kind}: {problem}" if problem else None)


def map_observation(
    obs: shapes.Observation, term: Terminology
) -> tuple[list[Measurement], list[MappingIssue]]:
    """All measurements (own value and matching components) of one relevant, valid Observation."""
    ref = f"Observation/{_text(obs.id) or '?'}"
    if obs.status in EXCLUDED_STATUSES:
        return [], [MappingIssue(ref, f"ignored: status {obs.status}")]
    when = _effective(obs)
    if when is None:
        return [], [MappingIssue(ref, "ignored: no effective time or issued date")]
    out: list[Measurement] = []
    issues: list[MappingIssue] = []
    holders: list[shapes._Valued] = [obs, *_items(obs.component)]
    for holder in holders:
        kind, code = _match(holder.code, term)  # type: ignore[attr-defined]
        if kind is None:
            continue
        m, problem = _measurement(holder, obs, kind, code, when, term)
        if m is not None:
            out.append(m)
        if problem:
            issues.append(MappingIssue(ref, problem))
    return out, issues


def is_study_report(resource: dict[str, Any], term: Terminology) -> bool:
    """A DiagnosticReport coded as a presence-only study of the value sets (an ECG)."""
    try:
        concept = msgspec.convert(resource.get("code"), shapes.CodeableConcept | None)
    except msgspec.ValidationError:
        return False
    kind, _ = _match(concept, term)
    return kind is not None and kind.quantity == "presence"


def map_study_report(
    report: shapes.DiagnosticReport, term: Terminology
) -> tuple[list[Measurement], list[MappingIssue]]:
    """The study as a value-less Measurement with the report's conclusion as text."""
    ref = f"DiagnosticReport/{_text(report.id) or '?'}"
    if report.status in EXCLUDED_STATUSES:
        return [], [MappingIssue(ref, f"ignored: status {report.status}")]
    kind, code = _match(report.code, term)
    period = report.effectivePeriod
    when = (
        raw.parse_datetime(report.effectiveDateTime)
        or (period and (raw.parse_end(period.end) or raw.parse_datetime(period.start)))
        or raw.parse_datetime(report.issued)
    )
    if kind is None or when is None:
        return [], [MappingIssue(ref, "ignored: no effective time or issued date")]
    m = Measurement(
        kind=kind.kind,
        value=None,
        unit=None,
        effective=when,
        resource_id=_text(report.id),
        text=_text(report.conclusion),
        status=report.status,
        code=code,
    )
    return [m], []
