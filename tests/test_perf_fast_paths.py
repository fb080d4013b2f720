"""The hot-path shortcuts of issue 8 give the same answers as the slow paths they replace."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.bodies import max_depth_exceeded, raw_depth_exceeded
from fhir_mappings import validation
from fhir_mappings.memo import ContentMemo, memoize_by_content

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


@settings(max_examples=300, deadline=None)
@given(value=JSON, limit=st.integers(min_value=1, max_value=8))
def test_byte_scan_depth_agrees_with_walking_the_tree(value: Any, limit: int) -> None:
    expected = isinstance(value, dict | list) and max_depth_exceeded(value, limit)
    for raw in _encodings(value):
        assert raw_depth_exceeded(raw, limit) is expected, raw


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
