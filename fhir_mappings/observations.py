"""Observation -> Measurement: value sets by system+code, units, comparators, components."""

from __future__ import annotations

import re
from collections.abc import Container
from datetime import datetime
from typing import Any

import msgspec

from fhir_mappings import raw, shapes
from fhir_mappings.domain import MappingIssue, Measurement, ReferenceRange
from fhir_mappings.readers import codings as _codings
from fhir_mappings.readers import concept_text as _concept_text
from fhir_mappings.readers import items as _items
from fhir_mappings.readers import text as _text
from fhir_mappings.terminology import ObservationKind, Terminology
from fhir_mappings.units import UCUM, normalise

# entered-in-error and cancelled results are not results; registered has no value yet.
EXCLUDED_STATUSES = frozenset({"entered-in-error", "cancelled", "registered"})
_VALUE_STRING = re.compile(r"^\s*(<=|>=|<|>|=)?\s*([-+]?\d+(?:[.,]\d+)?)\s*(\S.*)?$")


# An Observation is mapped from its compiled R4 shape (fhir_mappings.shapes.Observation):
# decoded straight from the request's bytes, or converted from JSON already decoded, it has
# its R4 types, so the readers (fhir_mappings.readers) take them for granted.


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


# Lab results of one analyte usually carry the same range: within one mapping (one chart)
# each distinct range is normalised once. Keys hold the bounds as sent; values are frozen.
RangeCache = dict[tuple[Any, ...], "ReferenceRange | None"]
_UNSEEN: Any = object()


def _range_key(rr: shapes.ReferenceRange, quantity: str) -> tuple[Any, ...]:
    low, high = rr.low, rr.high
    return (
        quantity,
        None if low is None else (low.value, low.code, low.unit),
        None if high is None else (high.value, high.code, high.unit),
    )


def _one_range(
    rr: shapes.ReferenceRange, kind: ObservationKind, term: Terminology
) -> ReferenceRange | None:
    quantity = term.quantities[kind.quantity]
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


def _reference_range(
    holder: shapes._Valued, kind: ObservationKind, term: Terminology, cache: RangeCache
) -> ReferenceRange | None:
    """The first reference range with a usable bound, in the quantity's canonical unit."""
    ranges = holder.referenceRange
    if ranges is None:
        return None
    for rr in ranges if isinstance(ranges, list) else (ranges,):
        key = _range_key(rr, kind.quantity)
        # One look-up: the key is a nested tuple, hashed afresh each time it is looked up.
        found = cache.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = cache[key] = _one_range(rr, kind, term)
        if found is not None:
            return found
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
# value, unit, comparator, text, original value, original unit (Measurement's order)
_Value = tuple[float | None, str | None, str | None, str | None, float | None, str | None]
_TEXT_ONLY: _Value = (None, None, None, None, None, None)


def _text_value(text: str | None) -> _Value:
    return (None, None, None, text, None, None)


def _value(
    holder: shapes._Valued, parent: shapes.Observation, kind: ObservationKind, term: Terminology
) -> tuple[_Value | None, str | None]:
    """Measurement fields from value[x]; second item is why the value is unusable."""
    quantity = term.quantities[kind.quantity]
    q = holder.valueQuantity
    if q is not None and q != _NO_QUANTITY:
        if q.value is None:
            return None, "valueQuantity has no numeric value"
        code: str | None = q.code
        unit = _text(q.unit)
        n = normalise(quantity, q.value, code if _text(q.system) in (None, UCUM) else None, unit)
        return (n.value, n.unit, q.comparator, None, q.value, code or unit), n.problem
    text = _text(holder.valueString)
    if text is not None:
        m = _VALUE_STRING.match(text)
        if not m or (m.group(3) or "").startswith((":", "/")):  # a titer "1:160" is text
            return _text_value(text), None
        comparator, number, unit_text = m.groups()
        value = float(number.replace(",", "."))
        code, unit = (unit_text.strip(), unit_text.strip()) if unit_text else _range_unit(parent)
        n = normalise(quantity, value, code, unit)
        shown = comparator if comparator in ("<", "<=", ">", ">=") else None
        return (n.value, n.unit, shown, text, value, code or unit), n.problem
    ratio = holder.valueRatio
    if ratio is not None and ratio != _NO_RATIO:
        num = ratio.numerator.value if ratio.numerator else None
        den = ratio.denominator.value if ratio.denominator else None
        return _text_value(
            f"{num:g}:{den:g}" if num is not None and den is not None else None
        ), None
    if holder.valueCodeableConcept is not None:
        return _text_value(_concept_text(holder.valueCodeableConcept)), None
    for other in (holder.valueInteger, holder.valueBoolean):
        if other is not None:
            return _text_value(str(other)), None
    if kind.quantity == "presence":
        return _TEXT_ONLY, None
    return None, "no value"


def _has_value(holder: shapes._Valued) -> bool:
    return any(getattr(holder, name) is not None for name in shapes.VALUES)


def _interpretation(holder: shapes._Valued) -> tuple[str, ...]:
    concepts = holder.interpretation
    if concepts is None:
        return ()
    found: list[str] = []
    for concept in concepts if isinstance(concepts, list) else (concepts,):
        found += [c.code for c in _codings(concept) if c.code]
    return tuple(found)


def _measurement(
    holder: shapes._Valued,
    parent: shapes.Observation,
    kind: ObservationKind,
    code: str | None,
    when: datetime,
    term: Terminology,
    cache: RangeCache,
) -> tuple[Measurement | None, str | None]:
    absent = holder.dataAbsentReason
    if absent is not None and not _has_value(holder):
        return None, f"{kind.kind}: data absent ({_concept_text(absent) or 'no reason'})"
    fields, problem = _value(holder, parent, kind, term)
    if fields is None:
        return None, f"{kind.kind}: {problem}"
    value, unit, comparator, text, original_value, original_unit = fields
    m = Measurement(
        kind.kind,
        None if problem else value,
        unit,
        when,
        parent.id,  # an Id: never blank
        comparator,
        text,
        _reference_range(holder, kind, term, cache)
        or (None if holder is parent else _reference_range(parent, kind, term, cache)),
        _interpretation(holder),
        parent.status,
        original_value,
        original_unit,
        kind.analyte,
        code,
        problem,
    )
    return m, (f"{kind.kind}: {problem}" if problem else None)


Match = tuple[ObservationKind | None, str | None]


def relevant_match(obs: shapes.Observation, term: Terminology) -> Match | None:
    """The Observation's own value-set match, or None when no rule can use it (is_relevant)."""
    found = _match(obs.code, term)
    if found[0] is not None or is_relevant_shape(obs, term):
        return found
    return None


def _obs_ref(obs: shapes.Observation) -> str:
    return f"Observation/{_text(obs.id) or '?'}"


def map_observation(
    obs: shapes.Observation,
    term: Terminology,
    top: Match | None = None,
    cache: RangeCache | None = None,
) -> tuple[list[Measurement], list[MappingIssue]]:
    """All measurements (own value and matching components) of one relevant, valid Observation.

    `top` is the Observation's own match when the caller has it (relevant_match); `cache`
    shares normalised reference ranges across the Observations of one chart.
    """
    if obs.status in EXCLUDED_STATUSES:
        return [], [MappingIssue(_obs_ref(obs), f"ignored: status {obs.status}")]
    when = _effective(obs)
    if when is None:
        return [], [MappingIssue(_obs_ref(obs), "ignored: no effective time or issued date")]
    cache = {} if cache is None else cache
    out: list[Measurement] = []
    issues: list[MappingIssue] = []
    components = obs.component
    holders: list[Any] = [obs] if components is None else [obs, *_items(components)]
    for holder in holders:
        kind, code = top if holder is obs and top is not None else _match(holder.code, term)
        if kind is None:
            continue
        m, problem = _measurement(holder, obs, kind, code, when, term, cache)
        if m is not None:
            out.append(m)
        if problem:
            issues.append(MappingIssue(_obs_ref(obs), problem))
    return out, issues


_CONCEPT: Any = shapes.CodeableConcept | None


def is_study_report(resource: dict[str, Any], term: Terminology) -> bool:
    """A DiagnosticReport coded as a presence-only study of the value sets (an ECG)."""
    try:
        concept = shapes.convert(resource.get("code"), _CONCEPT)
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
