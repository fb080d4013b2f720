"""The compiled R4 shapes (fhir_mappings.shapes) hold resources to the same rules as R4B.

fhir.resources' R4B models are the reference: on every resource of every fixture, and on a
wrong value put into each element a shape declares, the compiled check and the R4B model
(given the same elements) reach the same verdict, except where listed in LAXER_R4B.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.fhir.scenarios import roll
from fhir_mappings.shapes import PATTERNS, SHAPES
from fhir_mappings.validation import repair, validation_problem
from tests.conftest import THIRDPARTY

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
SOURCES = [*sorted((ROOT / "fixtures").glob("*/*.json"))]
SOURCES += sorted(THIRDPARTY.glob("*.json"))
# Where fhir.resources (pydantic in lax mode) accepts what R4 refuses, the shapes refuse:
# a number written as a JSON string ("5.2") or a boolean as "true"
# (http://hl7.org/fhir/R4/json.html#primitive), a date as a number (a Unix time to pydantic),
# and a code outside a required binding (R4 status codes: http://hl7.org/fhir/R4/terminologies.html#required).
LAXER_R4B = (
    "a number written as a string",
    "a string for a boolean",
    "a number for a date",
    "a code outside the value set",
)


def _resources(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("resourceType") in SHAPES:
            yield value
        for item in value.values():
            yield from _resources(item)
    elif isinstance(value, list):
        for item in value:
            yield from _resources(item)


def _fixture_resources() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in SOURCES:
        # Fixture dates are relative (`@now-30d`): rolled as every scenario test rolls them.
        for res in _resources(roll(json.loads(path.read_text()), NOW)):
            key = f"{path.parent.name}/{path.name}:{res['resourceType']}/{res.get('id', '?')}"
            found.setdefault(key, res)
    return found


RESOURCES = _fixture_resources()


def _r4b_problem(resource: dict[str, Any]) -> str | None:
    """R4B's verdict on the elements the shape declares (the ones the mapping reads)."""
    shape = SHAPES[resource["resourceType"]]
    names = {f.encode_name for f in msgspec.structs.fields(shape)}
    projected = {k: v for k, v in resource.items() if k in names or k == "resourceType"}
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(projected)
    except Exception as exc:
        return type(exc).__name__
    return None


def _compiled_problem(resource: dict[str, Any]) -> str | None:
    return validation_problem(resource)


def test_there_are_resources_of_every_shape() -> None:
    assert {r["resourceType"] for r in RESOURCES.values()} >= set(SHAPES) - {"DiagnosticReport"}


@pytest.mark.parametrize("key", sorted(RESOURCES))
def test_fixture_resources_get_the_r4b_verdict(key: str) -> None:
    resource = repair(RESOURCES[key])
    compiled, reference = _compiled_problem(resource), _r4b_problem(resource)
    assert (compiled is None) == (reference is None), (compiled, reference)


def _wrong_values(info: msgspec.inspect.Type) -> Iterator[tuple[str, Any]]:
    """Values that break the type `info` (a label says why), per R4 JSON."""
    if isinstance(info, msgspec.inspect.UnionType):
        info = next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
    if isinstance(info, msgspec.inspect.CustomType) and info.cls in PATTERNS:
        info = msgspec.inspect.StrType(pattern=PATTERNS[info.cls].pattern)  # checked by a hook
    if isinstance(info, msgspec.inspect.StrType):
        is_date = bool(info.pattern and "[1-9]000" in info.pattern)
        yield ("a number for a date" if is_date else "a number for a string"), 7
        yield "an empty string", ""
        if is_date:
            yield "an impossible date", "2024-13-45"
        elif info.pattern and info.pattern.startswith("^[^"):
            yield "a code with two spaces", "a  b"
    elif isinstance(info, msgspec.inspect.FloatType):
        yield "a boolean for a number", True
        yield "a number written as a string", "5.2"
    elif isinstance(info, msgspec.inspect.IntType):
        yield "a fraction for an integer", 1.5
        if info.ge is not None and info.ge >= 0:
            yield "below the minimum", info.ge - 1
    elif isinstance(info, msgspec.inspect.BoolType):
        yield "a string for a boolean", "true"
    elif isinstance(info, msgspec.inspect.LiteralType):
        yield "a code outside the value set", "not-a-code"
    elif isinstance(info, msgspec.inspect.StructType):
        yield "a string for an element", "x"
    elif isinstance(info, msgspec.inspect.ListType):
        yield "a string for a list", "x"
        for label, value in _wrong_values(info.item_type):
            yield f"{label} in a list", [value]


def _mutations() -> Iterator[tuple[str, dict[str, Any]]]:
    """One valid resource per shape, with each declared top-level element made wrong."""
    bases: dict[str, dict[str, Any]] = {}
    for res in RESOURCES.values():
        fixed = repair(res)
        if _compiled_problem(fixed) is None:
            bases.setdefault(res["resourceType"], fixed)
    for rtype, base in sorted(bases.items()):
        for field in msgspec.inspect.type_info(SHAPES[rtype]).fields:  # type: ignore[attr-defined]
            for label, value in _wrong_values(field.type):
                mutated = copy.deepcopy(base)
                mutated[field.encode_name] = value
                yield f"{rtype}.{field.encode_name}: {label}", mutated


MUTATIONS = dict(_mutations())


def test_every_shape_is_mutated() -> None:
    assert {key.split(".")[0] for key in MUTATIONS} >= set(SHAPES) - {"DiagnosticReport"}


@pytest.mark.parametrize("key", sorted(MUTATIONS))
def test_a_wrong_value_gets_the_r4b_verdict(key: str) -> None:
    resource = MUTATIONS[key]
    compiled = _compiled_problem(resource)
    assert compiled is not None and compiled.startswith("invalid R4: "), compiled
    if any(lax in key for lax in LAXER_R4B):
        return
    assert _r4b_problem(resource) is not None, f"R4B accepts it; the shapes say {compiled}"


def test_reasons_never_quote_the_offending_value() -> None:
    resource = next(m for k, m in MUTATIONS.items() if k.startswith("Observation.status"))
    resource["status"] = "patient-name-Jane-Doe"
    problem = _compiled_problem(resource)
    assert problem is not None and "Jane" not in problem
    assert problem.startswith("invalid R4: status:")


@pytest.mark.parametrize(
    "extra",
    [
        {"valueString": "high"},  # two value[x]
        {"valueRange": {"low": {"value": 1}}},  # one the mapping does not read still counts
        {"effectivePeriod": {"start": "2026-01-01"}},  # two effective[x]
    ],
)
def test_a_choice_element_carries_one_value(extra: dict[str, Any]) -> None:
    """R4 [x] elements: decoded from bytes or converted, two variants make it invalid."""
    from fhir_mappings import map_patient_state
    from fhir_mappings.lazy import lazy_members
    from tests.mapping_builders import NOW, observation, quantity

    res = {**observation("2157-6", quantity(100, "U/L")), **extra}
    problem = _compiled_problem(res)
    assert problem is not None and "only one of" in problem
    raw = msgspec.json.decode(json.dumps({"labs": res}).encode(), type=msgspec.Raw)
    for prefetch in ({"labs": res}, lazy_members(raw)):
        state = map_patient_state(prefetch, now=NOW)
        assert state.series == {}
        assert [i.reason for i in state.issues] == [problem]
