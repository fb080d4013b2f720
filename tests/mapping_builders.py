"""Small FHIR R4 JSON builders for the fhir_mappings tests (hand-made, R4-example-like)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from hypothesis import strategies as st

from fhir_mappings import map_patient_state
from fhir_mappings.domain import PatientState
from fhir_mappings.lazy import lazy_members

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
NOW = datetime(2026, 6, 14, 12, 0, tzinfo=UTC)


def quantity(value: Any, code: str | None = None, unit: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if code is not None:
        q.update(system=UCUM, code=code)
    if unit is not None or code is not None:
        q["unit"] = unit if unit is not None else code
    return q


def observation(
    code: str = "2157-6",
    value: Any = None,
    *,
    system: str = LOINC,
    oid: str = "o1",
    when: str = "2026-06-01T08:00:00Z",
    status: str = "final",
    **extra: Any,
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    if when:
        res["effectiveDateTime"] = when
    if value is not None:
        res["valueQuantity"] = value
    res.update(extra)
    return res


def med_request(
    concept: dict[str, Any] | None = None,
    *,
    rid: str = "mr1",
    status: str = "active",
    dosage: list[dict[str, Any]] | dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
    }
    if concept is not None:
        res["medicationCodeableConcept"] = concept
    if dosage is not None:
        res["dosageInstruction"] = dosage
    res.update(extra)
    return res


def rx(code: str, display: str | None = None, system: str = RXNORM) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], **({"text": display} if display else {})}


def condition(
    code: str | None,
    *,
    system: str = SNOMED,
    text: str | None = None,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    cid: str = "c1",
    **extra: Any,
) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if code:
        concept["coding"] = [{"system": system, "code": code}]
    if text:
        concept["text"] = text
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "code": concept,
        "subject": {"reference": "Patient/p1"},
    }
    if clinical:
        res["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical,
                }
            ]
        }
    if verification:
        res["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        }
    res.update(extra)
    return res


def bundle(*resources: dict[str, Any], btype: str | None = "searchset") -> dict[str, Any]:
    b: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    if btype:
        b["type"] = btype
    return b


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    """A search Bundle whose entries carry a fullUrl each, as a FHIR server returns them."""
    entries = [{"fullUrl": f"urn:uuid:{i}", "resource": r} for i, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def both_ways(
    key: str, value: dict[str, Any], one_pass: Callable[[Any], Any], now: datetime
) -> tuple[PatientState, PatientState, bool]:
    """Prefetch `key` mapped from the request's bytes, and from decoded JSON; and whether
    `one_pass` (a typed reader of fhir_mappings) read it in one pass."""
    lazy = lazy_members(msgspec.Raw(orjson.dumps({key: value})))
    read_in_one_pass = one_pass(lazy[key]) is not None
    from_bytes = map_patient_state(lazy, now=now)
    return from_bytes, map_patient_state({key: value}, now=now), read_in_one_pass


def change_lists(paths: list[tuple[Any, ...]], values: st.SearchStrategy[Any]) -> Any:
    """One to three (path, value) changes for mutated(); `...` deletes."""
    return st.lists(
        st.tuples(st.sampled_from(paths), values | st.just(...)), min_size=1, max_size=3
    )


def mutated(resource: dict[str, Any], changes: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    """A copy of `resource` with each (path, value) set (deleted when value is ...).

    A path step into a list takes its first object; a path that does not exist is skipped.
    """
    res = copy.deepcopy(resource)
    for path, value in changes:
        *parents, last = path
        at: Any = res
        for step in parents:
            at = at.get(step) if isinstance(at, dict) else None
            if isinstance(at, list):
                at = at[0] if at and isinstance(at[0], dict) else None
                continue
        if isinstance(at, dict):
            if value is ...:
                at.pop(last, None)
            else:
                at[last] = value
    return res


def json_values(scalars: st.SearchStrategy[Any], keys: list[str]) -> st.SearchStrategy[Any]:
    """Small JSON values: `scalars`, and lists and objects (members named from `keys`) of them."""
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(keys), inner, max_size=3)
        ),
        max_leaves=6,
    )


# FHIR dates and times near the forms the fast paths read (dates.plainly_valid): real ones
# (any zone, any day), R4-shaped ones with any digits, strings built from the pieces of one
# (non-ASCII digits, lowercase t and z, spaces), and the edges (29 February of any year, a
# leap second, zones around 14:00, years whose zone overflows, week dates, partial dates).
_MOMENT_PIECES = st.sampled_from(
    ["0", "1", "2", "3", "4", "5", "9", "٢", "-", ":", "T", "t", "Z", "z", "+", ".", " "]
)
MOMENTS = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat(timespec="seconds")),
    st.dates().map(lambda d: d.isoformat()),
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}"
        r"(\.[0-9]{1,3})?(Z|[+-][0-9]{2}:[0-9]{2})?)?\Z"
    ),
    st.lists(_MOMENT_PIECES, min_size=8, max_size=26).map("".join),
    st.sampled_from(
        [
            "2023-02-29T10:00:00Z",
            "2024-01-05T10:11:60+01:00",
            "2024-01-05T10:11:12+14:00",
            "2024-01-05T10:11:12-14:01",
            "2024-01-05T10:11:12+13:59",
            "2024-01-05T10:11:12+23:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:00:00-14:00",
            "0000-01-05T10:11:12Z",
            "2024-W01-1T10:11:12Z",
            "2024-01-05 10:11:12+00:00",
            "2024-01",
            "2024",
        ]
    ),
)
