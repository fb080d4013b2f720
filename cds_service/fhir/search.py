"""FHIR search subset of CDS Hooks prefetch (reference, token, date prefixes, _sort) in memory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any


class UnsupportedSearch(ValueError):
    """A search parameter or value the evaluator does not understand (400 on the server)."""


# Which element each date search parameter reads, per resource type (FHIR R4 search params).
_DATE_PATHS: dict[str, tuple[str, ...]] = {
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "MedicationRequest": ("authoredOn",),
    "Condition": ("recordedDate", "onsetDateTime", "onsetPeriod.start"),
    "AllergyIntolerance": ("recordedDate", "onsetDateTime"),
    "ServiceRequest": ("authoredOn", "occurrenceDateTime"),
    "Patient": ("birthDate",),
}
_CODE_PATHS = {"code": "code", "clinical-status": "clinicalStatus", "category": "category"}
_PAGING = {"_count", "_offset", "_format", "_summary", "_total"}


def _get(resource: Mapping[str, Any], path: str) -> Any:
    node: Any = resource
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def parse_date(value: str) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware datetime (dates at midnight UTC)."""
    text = value.strip()
    if len(text) == 4:
        text += "-01-01"
    elif len(text) == 7:
        text += "-01"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _resource_date(resource: Mapping[str, Any], rtype: str) -> datetime | None:
    for path in _DATE_PATHS.get(rtype, ()):
        value = _get(resource, path)
        if isinstance(value, str) and (parsed := parse_date(value)) is not None:
            return parsed
    return None


def _codings(node: Any) -> list[Mapping[str, Any]]:
    concepts = node if isinstance(node, list) else [node]
    return [
        c for concept in concepts if isinstance(concept, dict) for c in concept.get("coding") or []
    ]


def _token_match(codings: list[Mapping[str, Any]], wanted: str) -> bool:
    """`system|code`, `|code` (no system), or `code` (any system); comma means OR."""
    for alternative in wanted.split(","):
        system, bar, code = alternative.rpartition("|")
        for coding in codings:
            if coding.get("code") != code:
                continue
            if not bar or coding.get("system") == (system or None):
                return True
    return False


def _date_match(date: datetime | None, wanted: str) -> bool:
    prefix, text = (wanted[:2], wanted[2:]) if wanted[:2].isalpha() else ("eq", wanted)
    bound = parse_date(text)
    if bound is None:
        raise UnsupportedSearch("date values must be FHIR dates with prefix eq/lt/gt/ge/le")
    if date is None:
        return False
    compare: dict[str, Callable[[datetime, datetime], bool]] = {
        "eq": lambda a, b: a.date() == b.date() if len(text) <= 10 else a == b,
        "lt": lambda a, b: a < b,
        "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b,
        "le": lambda a, b: a <= b,
    }
    if prefix not in compare:
        raise UnsupportedSearch(f"date prefix {prefix!r} is not supported")
    return compare[prefix](date, bound)


def _matches(resource: Mapping[str, Any], rtype: str, name: str, value: str) -> bool:
    if name in ("patient", "subject"):
        ref = _get(resource, "subject.reference") or _get(resource, "patient.reference")
        wanted = value if "/" in value else f"Patient/{value}"
        return ref == wanted
    if name == "_id":
        return resource.get("id") in value.split(",")
    if name == "status" or name == "intent":
        return resource.get(name) in value.split(",")
    if name in _CODE_PATHS:
        return _token_match(_codings(resource.get(_CODE_PATHS[name])), value)
    if name in ("date", "authoredon"):
        return _date_match(_resource_date(resource, rtype), value)
    raise UnsupportedSearch(f"search parameter {name!r} is not supported")


def evaluate(
    resources: list[dict[str, Any]], rtype: str, params: Mapping[str, list[str]]
) -> list[dict[str, Any]]:
    """Resources matching every parameter (AND across repeats), ordered by `_sort`."""
    hits = resources
    for name, values in params.items():
        if name in _PAGING or name == "_sort":
            continue
        for value in values:
            hits = [r for r in hits if _matches(r, rtype, name, value)]
    for sort in reversed(",".join(params.get("_sort", [])).split(",")):
        if sort in ("date", "-date"):
            floor = datetime.min.replace(tzinfo=UTC)
            hits = sorted(
                hits,
                key=lambda r: _resource_date(r, rtype) or floor,
                reverse=sort.startswith("-"),
            )
        elif sort:
            raise UnsupportedSearch(f"_sort={sort} is not supported")
    return hits
