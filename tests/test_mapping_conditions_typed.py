"""Conditions typed in one pass (clinical.typed_conditions) map as read one by one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from benchmarks import synth
from fhir_mappings.clinical import typed_conditions
from fhir_mappings.domain import PatientState
from tests.mapping_builders import both_ways, change_lists, json_values, mutated, searchset

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CONDITIONS = synth.resources_by_key(200, NOW - timedelta(days=2))["conditions"]


def _both(value: dict[str, Any]) -> tuple[PatientState, PatientState, bool]:
    """(mapped from the request's bytes, mapped from decoded JSON, read in one pass)."""
    return both_ways("conditions", value, typed_conditions, NOW)


def _with(path: tuple[Any, ...], value: Any, which: int = 0) -> dict[str, Any]:
    """A Condition with `value` at `path` (deleted when value is ...)."""
    res = copy.deepcopy(CONDITIONS[which])
    *parents, last = path
    at: Any = res
    for step in parents:
        at = at[step]
    if value is ...:
        del at[last]
    else:
        at[last] = value
    return res


def test_a_search_of_valid_conditions_is_read_typed_in_one_pass() -> None:
    from_bytes, decoded, one_pass = _both(searchset(*CONDITIONS))
    assert one_pass
    assert from_bytes == decoded
    dermatomyositis = from_bytes.conditions[0]
    assert dermatomyositis.resource_id == "cond-0"
    assert "dermatomyositis" in dermatomyositis.categories
    assert dermatomyositis.matched_by == ("snomed:396230008",)
    assert dermatomyositis.onset is not None and dermatomyositis.recorded is not None
    resolved = [c for c in CONDITIONS if c["clinicalStatus"]["coding"][0]["code"] == "resolved"]
    assert resolved and len(from_bytes.conditions) == len(CONDITIONS) - len(resolved)
    assert not from_bytes.issues


@pytest.mark.parametrize(
    "changed",
    [
        _with(("clinicalStatus", "coding", 0, "code"), "remission"),
        _with(("verificationStatus", "coding", 0, "code"), "refuted"),
        _with(("verificationStatus", "coding", 0, "code"), "entered-in-error"),
        _with(("abatementDateTime",), "2026-01-02", which=2),
        _with(("severity",), {"text": "Severe"}),
        _with(("code",), {"coding": [{"system": synth.ICD10CM, "code": "M33.10"}]}),
        _with(("code",), {"text": "juvenile dermatomyositis"}),
        _with(("onsetDateTime",), ..., which=1) | {"onsetPeriod": {"start": "2020-03"}},
        _with(("onsetDateTime",), "2024-02-29"),
    ],
)
def test_what_a_condition_says_is_read_the_same_in_one_pass(changed: dict[str, Any]) -> None:
    from_bytes, decoded, one_pass = _both(searchset(*CONDITIONS[2:], changed))
    assert one_pass
    assert from_bytes == decoded


@pytest.mark.parametrize(
    ("changed", "reported"),
    [
        # a JSON null anywhere: absent and null can differ (a null counts as a choice)
        (_with(("onsetString",), None), "invalid R4: only one of onsetDateTime, onsetString"),
        (_with(("abatementDateTime",), None) | {"note": [{"text": "null"}]}, None),
        # no clinical status: whether it was abated is read from its keys
        (_with(("clinicalStatus",), ...), None),
        (_with(("clinicalStatus",), ...) | {"abatementBoolean": True}, None),
        (_with(("clinicalStatus",), {}), None),
        # a lone category object: repaired
        (_with(("category",), {"text": "problem list"}), None),
        # invalid: reported on its own, as before
        (_with(("onsetDateTime",), "2023-02-29"), "onsetDateTime is not a real date"),
        (_with(("onsetDateTime",), "2023-02-30"), "invalid R4: onsetDateTime"),
        (_with(("onsetAge",), {"value": 40}), "invalid R4: only one of"),
        (_with(("code", "coding", 0, "code"), " 396230008"), "invalid R4: code"),
        (_with(("subject",), ...), "invalid R4"),
        ({"resourceType": "Observation", "id": "o1", "status": "final", "code": {}}, None),
    ],
)
def test_a_search_with_anything_else_is_read_entry_by_entry(
    changed: dict[str, Any], reported: str | None
) -> None:
    """One pass needs every Condition valid, with a clinical status, and no null; else as before."""
    from_bytes, decoded, one_pass = _both(searchset(*CONDITIONS[1:], changed))
    assert not one_pass
    assert from_bytes == decoded
    reasons = [i.reason for i in from_bytes.issues]
    if reported is None:
        assert not reasons
    else:
        assert len(reasons) == 1 and reasons[0].startswith(reported), reasons


def test_an_abated_condition_without_clinical_status_is_still_not_current() -> None:
    abated = _with(("clinicalStatus",), ...) | {"abatementString": "childhood"}
    from_bytes, _, one_pass = _both(searchset(abated))
    assert not one_pass
    assert from_bytes.conditions == ()


PATHS = [
    ("id",),
    ("clinicalStatus",),
    ("clinicalStatus", "coding", 0, "code"),
    ("verificationStatus",),
    ("verificationStatus", "coding", 0, "code"),
    ("category",),
    ("category", 0, "coding"),
    ("severity",),
    ("code",),
    ("code", "text"),
    ("code", "coding"),
    ("code", "coding", 0, "code"),
    ("code", "coding", 0, "system"),
    ("code", "coding", 0, "display"),
    ("subject",),
    ("onsetDateTime",),
    ("onsetPeriod",),
    ("onsetString",),
    ("onsetAge",),
    ("abatementDateTime",),
    ("abatementPeriod",),
    ("abatementRange",),
    ("recordedDate",),
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 400)
    | st.sampled_from(["", " ", "a  b", "active", "resolved", "refuted", "M33.1", "severe"])
    | st.sampled_from(["2024-02-29", "2023-02-29", "2024-05", "2024-06-01T10:00:00+01:00"])
    | st.sampled_from([synth.SNOMED, synth.ICD10CM, "396230008", "Dermatomyositis"])
    | st.text(max_size=8)
)
VALUES = json_values(_SCALARS, ["code", "system", "display", "text", "coding", "start", "end"])


@settings(max_examples=300, deadline=None)
@given(
    changes=change_lists(PATHS, VALUES),
    which=st.integers(0, len(CONDITIONS) - 1),
)
def test_one_pass_and_entry_by_entry_map_the_same(
    changes: list[tuple[tuple[Any, ...], Any]], which: int
) -> None:
    """Whatever a Condition holds, typed in one pass or read one by one: the same state."""
    res = mutated(CONDITIONS[which], changes)
    from_bytes, decoded, one_pass = _both(searchset(*CONDITIONS[:3], res))
    event(f"one pass: {one_pass}")
    assert from_bytes == decoded
