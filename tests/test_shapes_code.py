"""shapes.Code (checked once per distinct string) answers as msgspec's own pattern check."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings import readers, shapes

PatternCode = Annotated[str, msgspec.Meta(pattern=shapes.CodeItem.__metadata__[0].pattern)]


class _Reference(msgspec.Struct):
    code: PatternCode | None = None


class _Checked(msgspec.Struct):
    code: shapes.Code | None = None


# Every kind of whitespace Python's \s knows, beside code characters.
CODE_TEXT = st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000ab1-./é", max_size=6)
JSON_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | CODE_TEXT
    | st.lists(st.integers(0, 9), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(0, 9), max_size=2)
)


def _outcome(read: Any) -> tuple[str, Any]:
    try:
        value = read().code
    except msgspec.ValidationError as exc:
        return "refused", str(exc)
    return "read", value if value is None else (type(value) is str or value.__class__, value)


def _plain(outcome: tuple[str, Any]) -> tuple[str, Any]:
    kind, value = outcome
    return (kind, value[1]) if kind == "read" and value is not None else outcome


@settings(max_examples=400, deadline=None)
@given(value=JSON_VALUES)
def test_a_code_is_read_and_refused_as_msgspecs_pattern_check_would(value: Any) -> None:
    data = orjson.dumps({"code": value})
    reference = _outcome(lambda: msgspec.json.decode(data, type=_Reference))
    checked = _outcome(lambda: shapes.decoder(_Checked).decode(data))
    converted = _outcome(lambda: shapes.convert({"code": value}, _Checked))
    assert _plain(checked) == _plain(reference)
    assert _plain(converted) == _plain(reference)
    for kind, read in (checked, converted):
        if kind == "read" and read is not None:
            assert read[0] is shapes.Code  # a str, as every reader takes it
            assert readers.text(read[1]) == read[1]


def test_each_distinct_code_is_checked_once_and_the_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shapes, "_CHECKED", {})
    monkeypatch.setattr(shapes, "_CHECKED_MAX", 8)
    read = shapes.decoder(list[_Checked])
    first, again = read.decode(b'[{"code": "final"}, {"code": "final"}]')
    assert first.code is again.code  # checked once, the same string reused
    codes = [f"c{i}" for i in range(50)]
    decoded = read.decode(orjson.dumps([{"code": c} for c in codes]))
    assert [d.code for d in decoded] == codes
    assert len(shapes._CHECKED) <= 8
    with pytest.raises(msgspec.ValidationError, match="matching regex"):
        read.decode(b'[{"code": "final "}]')  # refused, remembered or not
