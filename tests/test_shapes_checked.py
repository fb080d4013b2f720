"""Strings checked by shapes.decode_hook (Code, DateTime, Instant) answer as msgspec's own
pattern check of R4's regex would: the same strings read, the same errors for the rest."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings import readers, shapes
from tests.mapping_builders import MOMENTS

# Every kind of whitespace Python's \s knows, beside code characters.
CODE_TEXT = st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000ab1-./é", max_size=6)
OTHER_JSON = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(st.integers(0, 9), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(0, 9), max_size=2)
)
CASES = {shapes.Code: CODE_TEXT, shapes.DateTime: MOMENTS, shapes.Instant: MOMENTS}


def _structs(kind: type[Any]) -> tuple[type[Any], type[Any]]:
    pattern = Annotated[str, msgspec.Meta(pattern=shapes.PATTERNS[kind].pattern)]
    reference = msgspec.defstruct("Reference", [("value", pattern | None, None)])
    checked = msgspec.defstruct("Checked", [("value", kind | None, None)])
    return reference, checked


def _outcome(read: Any) -> tuple[str, Any]:
    try:
        value = read().value
    except msgspec.ValidationError as exc:
        return "refused", str(exc)
    return "read", value


@pytest.mark.parametrize("kind", list(CASES), ids=lambda k: k.__name__)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_checked_string_is_read_and_refused_as_msgspecs_pattern_check(
    kind: type[Any], data: st.DataObject
) -> None:
    value = data.draw(CASES[kind] | OTHER_JSON)
    reference, checked = _structs(kind)
    raw = orjson.dumps({"value": value})
    expected = _outcome(lambda: msgspec.json.decode(raw, type=reference))
    decoded = _outcome(lambda: shapes.decoder(checked).decode(raw))
    converted = _outcome(lambda: shapes.convert({"value": value}, checked))
    assert decoded == expected
    assert converted == expected
    for outcome, read in (decoded, converted):
        if outcome == "read" and read is not None:
            assert type(read) is kind  # a str, as every reader takes it
            assert readers.text(read) == read


def test_each_distinct_code_is_checked_once_and_the_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shapes, "_CHECKED", {})
    monkeypatch.setattr(shapes, "_CHECKED_MAX", 8)
    _, checked = _structs(shapes.Code)
    read = shapes.decoder(list[checked])  # type: ignore[valid-type]
    first, again = read.decode(b'[{"value": "final"}, {"value": "final"}]')
    assert first.value is again.value  # checked once, the same string reused
    codes = [f"c{i}" for i in range(50)]
    decoded = read.decode(orjson.dumps([{"value": c} for c in codes]))
    assert [d.value for d in decoded] == codes
    assert len(shapes._CHECKED) <= 8
    long_code = "x" * 65  # valid, checked, never kept: memory stays bounded by size too
    assert read.decode(orjson.dumps([{"value": long_code}]))[0].value == long_code
    assert long_code not in shapes._CHECKED
    with pytest.raises(msgspec.ValidationError, match="matching regex"):
        read.decode(b'[{"value": "final "}]')  # refused, remembered or not


def test_a_shape_type_no_reader_checks_is_a_bug_raised_not_a_refused_resource() -> None:
    class Unchecked(str):
        """A string type the shapes' decode hook has no reader for."""

    holder = msgspec.defstruct("Holder", [("value", Unchecked | None, None)])
    with pytest.raises(KeyError):  # a ValidationError would report the resource, hiding the bug
        shapes.decoder(holder).decode(b'{"value": "x"}')
