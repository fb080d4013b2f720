"""A small in-memory FHIR R4 search, for the prefetch query subset CDS Hooks allows.

Used to fill prefetch for fixture scenarios and by the fixture FHIR server.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fhir_mappings.dates import parse_fhir_date

# Which element each search parameter reads, per resource type (FHIR R4 search params).
_DATE_PATHS = {
    "Observation": ("effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued"),
    "MedicationRequest": ("authoredOn",),
    "MedicationAdministration": ("effectiveDateTime", "effectivePeriod.start"),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
    "Condition": ("recordedDate", "onsetDateTime"),
    "AllergyIntolerance": ("recordedDate",),
    "ServiceRequest": ("authoredOn",),
}
_PATIENT_PATHS = ("subject", "patient")
_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")
_UNDATED = datetime.min.replace(tzinfo=UTC)
_OPEN_END = datetime.max.replace(tzinfo=UTC)
# Result parameters (paging, format) that select no resources; `_offset` is the fixture
# FHIR server's paging cursor.
_RESULT_PARAMS = frozenset(
    {"_count", "_sort", "_format", "_getpages", "_getpagesoffset", "_offset"}
)


class SearchError(ValueError):
    """A query outside the supported subset."""


def _get(resource: dict[str, Any], dotted: str) -> Any:
    value: Any = resource
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _range(value: Any) -> tuple[datetime, datetime] | None:
    """The instants a date element covers, [start, end): a dateTime, or a Period (open end)."""
    if isinstance(value, dict):  # Period: from its start's first to its end's last instant
        start, end = parse_fhir_date(value.get("start")), parse_fhir_date(value.get("end"))
        if start is None and end is None:
            return None
        return (start.start if start else _UNDATED, end.end if end else _OPEN_END)
    parsed = parse_fhir_date(value)
    return (parsed.start, parsed.end) if parsed else None


def resource_range(resource: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The range a search's `date` parameter compares for this resource (search.html#date)."""
    for path in _DATE_PATHS.get(resource.get("resourceType", ""), ()):
        found = _range(_get(resource, path))
        if found:
            return found
    return None


def resource_date(resource: dict[str, Any]) -> datetime | None:
    """The date `_sort=date` orders this resource by: the start of its range."""
    found = resource_range(resource)
    return found[0] if found else None


def _codes(resource: dict[str, Any]) -> Iterable[tuple[str | None, str | None]]:
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    for coding in concept.get("coding", []) if isinstance(concept, dict) else []:
        if isinstance(coding, dict):
            yield coding.get("system"), coding.get("code")


def _match_token(resource: dict[str, Any], values: list[str]) -> bool:
    for wanted in values:
        system, sep, code = wanted.rpartition("|")
        for have_system, have_code in _codes(resource):
            if have_code == code and (not sep or not system or have_system == system):
                return True
    return False


def _match_patient(resource: dict[str, Any], values: list[str]) -> bool:
    if resource.get("resourceType") == "Patient":
        return resource.get("id") in [v.removeprefix("Patient/") for v in values]
    for path in _PATIENT_PATHS:
        ref = _get(resource, f"{path}.reference")
        if isinstance(ref, str) and ref.removeprefix("Patient/") in [
            v.removeprefix("Patient/") for v in values
        ]:
            return True
    return False


def _status_value(resource: dict[str, Any], param: str) -> str | None:
    if param == "status":
        value = resource.get("status")
        return value if isinstance(value, str) else None
    codings = _get(resource, "clinicalStatus.coding") or []
    codes = [c.get("code") for c in codings if isinstance(c, dict)]
    return codes[0] if codes else None


def _match_date(resource: dict[str, Any], expression: str) -> bool:
    """FHIR R4 search.html#prefix on ranges: `ge2024` is any time from 2024 on."""
    prefix = expression[:2] if expression[:2] in _PREFIXES else "eq"
    bound = parse_fhir_date(expression[2:] if expression[:2] in _PREFIXES else expression)
    if bound is None:
        raise SearchError(f"bad date {expression!r}")
    target = resource_range(resource)
    if target is None:
        return False
    low, high = target
    contained = bound.start <= low and high <= bound.end
    return {
        "eq": contained,
        "ne": not contained,
        "gt": high > bound.end,
        "lt": low < bound.start,
        "ge": high > bound.end or contained,
        "le": low < bound.start or contained,
        "sa": low >= bound.end,
        "eb": high <= bound.start,
    }[prefix]


def _matches(resource: dict[str, Any], name: str, values: list[str]) -> bool:
    split = [v for value in values for v in value.split(",")]
    if name in ("patient", "subject"):
        return _match_patient(resource, split)
    if name in ("code", "medication.code"):
        return _match_token(resource, split)
    if name in ("status", "clinical-status"):
        return _status_value(resource, name) in split
    if name == "date":
        return all(_match_date(resource, value) for value in values)
    if name == "_id":
        return resource.get("id") in split
    raise SearchError(f"unsupported search parameter {name!r}")


class InMemoryFhir:
    """Resources held in memory, answering reads and the prefetch search subset."""

    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self.by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in resources:
            self.by_type.setdefault(resource.get("resourceType", ""), []).append(resource)

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        for resource in self.by_type.get(resource_type, []):
            if resource.get("id") == resource_id:
                return resource
        return None

    def search(self, resource_type: str, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Matching resources, sorted as `_sort` asks; `_count` is the caller's page size."""
        found = list(self.by_type.get(resource_type, []))
        for name, values in params.items():
            if name in _RESULT_PARAMS:
                continue
            found = [r for r in found if _matches(r, name.split(":")[0], values)]
        sort = (params.get("_sort") or [""])[0]
        if sort.lstrip("-") == "date":
            found.sort(key=lambda r: resource_date(r) or _UNDATED, reverse=sort.startswith("-"))
        return found

    def query(self, relative_url: str) -> dict[str, Any] | None:
        """Answer a filled prefetch template: a read gives the resource, a search a Bundle."""
        parts = urlsplit(relative_url)
        path = parts.path.strip("/")
        if "/" in path:
            resource_type, _, resource_id = path.partition("/")
            return self.read(resource_type, resource_id)
        params = parse_qs(parts.query, keep_blank_values=False)
        matches = self.search(path, params)
        return searchset(matches)


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchset Bundle holding `resources` (match mode)."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r.get('id', '')}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
