"""The hot-path shortcuts of issue 8 give the same answers as the slow paths they replace."""

from __future__ import annotations

import gc
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import synth
from cds_service.bodies import max_depth_exceeded, raw_depth_exceeded
from fhir_mappings import (
    load_terminology,
    map_order_context,
    map_patient_state,
    raw,
    terminology,
    validation,
)
from fhir_mappings.memo import ContentMemo, memoize_by_content
from fhir_mappings.observations import is_relevant
from fhir_mappings.state import OUTCOME_MEMO
from tests.conftest import make_app

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SNOMED = "http://snomed.info/sct"

# Strings full of what could confuse a byte scanner: brackets, quotes, backslashes, escapes.
TRICKY = st.text(alphabet='[]{}"\\/nu0aé\u2028 ', max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY, inner, max_size=3),
    max_leaves=40,
)


def _encodings(value: Any) -> list[bytes]:
    return [
        orjson.dumps(value),
        json.dumps(value).encode(),  # \\uXXXX escapes
        json.dumps(value, indent=2, ensure_ascii=False).encode(),
    ]


@settings(max_examples=500, deadline=None)
@given(value=JSON, limit=st.integers(min_value=1, max_value=8))
def test_byte_scan_depth_agrees_with_walking_the_tree(value: Any, limit: int) -> None:
    expected = isinstance(value, dict | list) and max_depth_exceeded(value, limit)
    for encoded in _encodings(value):
        assert raw_depth_exceeded(encoded, limit) is expected, encoded


@pytest.mark.parametrize(
    ("raw", "limit", "exceeded"),
    [
        (b'{"a": "[[[[[[[[[["}', 1, False),
        (b'{"a": "\\\\", "b": [[["x"]]]}', 3, True),
        (b'{"a": "\\"[[[", "b": []}', 2, False),
        (b"[[[]]]", 3, False),
        (b"[[[]]]", 2, True),
        (b'"just a string"', 1, False),
    ],
)
def test_byte_scan_depth_on_escapes_and_strings(raw: bytes, limit: int, exceeded: bool) -> None:
    assert raw_depth_exceeded(raw, limit) is exceeded


def test_memo_answers_repeats_from_the_cache_and_stays_bounded() -> None:
    memo = ContentMemo(size=2)
    calls: list[dict[str, Any]] = []

    @memoize_by_content(memo)
    def check(resource: dict[str, Any]) -> str:
        calls.append(resource)
        return str(resource.get("id"))

    assert [check({"id": i}) for i in (1, 1, 2, 1, 3, 2)] == ["1", "1", "2", "1", "3", "2"]
    # 1 is recomputed never (hit twice); 2 fell out when 3 came in (size 2) and is recomputed.
    assert [c["id"] for c in calls] == [1, 2, 3, 2]
    assert len(memo) == 2


def test_cached_validation_gives_the_same_verdict_as_the_first_time() -> None:
    validation.VALIDATION_MEMO.clear()
    bad = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "CK"},
        "valueQuantity": {"value": "abc"},
    }
    good = {**bad, "valueQuantity": {"value": 12, "unit": "U/L"}}
    first = [validation.validation_problem(bad), validation.validation_problem(good)]
    again = [validation.validation_problem(dict(bad)), validation.validation_problem(dict(good))]
    assert first == again
    assert first[0] is not None and "invalid R4" in first[0]
    assert first[1] is None
    assert validation.VALIDATION_MEMO.hits == 2


def _lab(oid: str, value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2157-6"}]},
        "effectiveDateTime": "2026-11-01T10:00:00Z",
        "valueQuantity": {"value": value, "unit": "U/L", "system": "http://unitsofmeasure.org"},
    }


def test_remembered_mapping_is_the_same_on_every_call() -> None:
    OUTCOME_MEMO.clear()
    prefetch = {
        "labs": {
            "resourceType": "Bundle",
            "entry": [{"resource": _lab("good", 900)}, {"resource": _lab("bad", "abc")}],
        },
        "conditions": {
            "resourceType": "Bundle",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Condition",
                        "id": "c1",
                        "clinicalStatus": {"coding": [{"code": "active"}]},
                        "code": {"coding": [{"system": SNOMED, "code": "396230008"}]},
                        "subject": {"reference": "Patient/p1"},
                    }
                }
            ],
        },
    }
    first = map_patient_state(prefetch, now=NOW)
    again = map_patient_state(orjson.loads(orjson.dumps(prefetch)), now=NOW)
    assert OUTCOME_MEMO.hits == 3
    assert again == first
    assert [m.value for m in again.get_series("ck").items] == [900.0]
    assert [i.resource for i in again.issues] == ["Observation/bad"]
    assert "myopathy" in again.conditions[0].categories


def test_a_changed_resource_is_mapped_anew() -> None:
    OUTCOME_MEMO.clear()
    before = map_patient_state({"labs": _lab("o1", 100)}, now=NOW)
    after = map_patient_state({"labs": _lab("o1", 2500)}, now=NOW)
    assert [m.value for m in before.get_series("ck").items] == [100.0]
    assert [m.value for m in after.get_series("ck").items] == [2500.0]


@pytest.mark.parametrize(("setting", "expected"), [(50_000, 50_000), (0, 700)])
def test_gc_threshold_setting(tmp_path: Path, setting: int, expected: int) -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, *before[1:])
        make_app(tmp_path, GC_GEN0_THRESHOLD=setting)
        assert gc.get_threshold()[0] == expected
    finally:
        gc.set_threshold(*before)


def test_name_matcher_answers_repeated_texts_the_same_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    matcher = load_terminology().drug_names
    text = "Diazepam 5 MG Oral Tablet (VALIUM)"
    first = matcher.find(text)
    first.append(("mutated", "by a caller"))  # callers get their own list
    assert matcher.find(text) == [("diazepam", "diazepam"), ("diazepam", "valium")]
    monkeypatch.setattr(terminology, "_SEEN_TEXTS", 2)
    for i in range(5):
        matcher.find(f"lorazepam {i} mg")
    assert len(matcher._seen) <= 2
    assert matcher.find("lorazepam 4 mg") == [("lorazepam", "lorazepam")]


def test_memo_shared_by_threads_never_answers_for_other_content() -> None:
    memo = ContentMemo(size=8)

    @memoize_by_content(memo)
    def double(resource: dict[str, Any]) -> int:
        return int(resource["n"]) * 2

    wrong: list[tuple[int, int]] = []

    def hammer(offset: int) -> None:
        for i in range(2000):
            n = (i * 7 + offset) % 50
            got = double({"n": n})
            if got != n * 2:
                wrong.append((n, got))

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(memo) <= 8


def test_mapping_memo_size_setting(tmp_path: Path) -> None:
    before = OUTCOME_MEMO.size
    try:
        make_app(tmp_path, MAPPING_MEMO_ENTRIES=0)
        OUTCOME_MEMO.clear()
        map_patient_state({"labs": _lab("o1", 100)}, now=NOW)
        assert len(OUTCOME_MEMO) == 0
        make_app(tmp_path, MAPPING_MEMO_ENTRIES=5)
        map_patient_state({"labs": _lab("o1", 100)}, now=NOW)
        assert len(OUTCOME_MEMO) == 1 and OUTCOME_MEMO.size == 5
    finally:
        OUTCOME_MEMO.size = before


def test_remembered_medications_get_their_course_from_the_current_time() -> None:
    prefetch = synth.prefetch(200, now=NOW)
    later = NOW + timedelta(days=40)
    OUTCOME_MEMO.clear()
    map_patient_state(prefetch, now=NOW)  # fills the memo at NOW
    remembered = map_patient_state(prefetch, now=later)
    OUTCOME_MEMO.clear()
    fresh = map_patient_state(prefetch, now=later)
    assert remembered == fresh
    active = [m for m in remembered.medications if m.status == "active"]
    assert active and all(m.course.elapsed_days and m.course.elapsed_days >= 40 for m in active)


def test_remembered_draft_orders_match_a_fresh_mapping() -> None:
    drafts = synth.draft_orders(now=NOW)
    selections = ["MedicationRequest/med-90002"]
    OUTCOME_MEMO.clear()
    first = map_order_context(drafts, selections, now=NOW)
    again = map_order_context(drafts, selections, now=NOW + timedelta(hours=1))
    OUTCOME_MEMO.clear()
    fresh = map_order_context(drafts, selections, now=NOW + timedelta(hours=1))
    assert again == fresh
    assert [d.is_draft for d in first.drafts] == [True, True]
    assert first.selected()[0].reference == "MedicationRequest/med-90002"


def _relevant_by_codings(resource: dict[str, Any]) -> bool:
    """The filter as first written: through Coding objects (the reference behaviour)."""
    term = load_terminology()
    keys = {
        (c.system.strip(), c.code.strip())
        for c in raw.codings(resource.get("code"))
        if c.system and c.code
    }
    parts = [raw.codings(c.get("code")) for c in raw.objs(resource, "component")]
    component_keys = {
        (c.system.strip(), c.code.strip()) for cs in parts for c in cs if c.system and c.code
    }
    return bool(
        keys & (set(term.observation_codes) | set(term.panel_codes))
        or component_keys & set(term.observation_codes)
    )


SYSTEMS = st.sampled_from(["http://loinc.org", " http://loinc.org ", "http://snomed.info/sct", ""])
CODES = st.sampled_from(["2157-6", " 2157-6", "29463-7", "8867-4", "85354-9", "", "x"])
CODING = st.fixed_dictionaries({}, optional={"system": SYSTEMS | st.none(), "code": CODES})
CONCEPT = (
    st.fixed_dictionaries({}, optional={"coding": st.lists(CODING, max_size=3) | CODING})
    | CODING
    | st.none()
    | st.just("text")
)


@settings(max_examples=400, deadline=None)
@given(code=CONCEPT, components=st.lists(st.fixed_dictionaries({"code": CONCEPT}), max_size=2))
def test_relevance_filter_matches_the_coding_based_definition(
    code: Any, components: list[dict[str, Any]]
) -> None:
    resource = {"resourceType": "Observation", "code": code, "component": components}
    assert is_relevant(resource, load_terminology()) is _relevant_by_codings(resource)
