"""The hot-path shortcuts give the same answers as the slow paths they replace."""

from __future__ import annotations

import gc
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import synth
from cds_service.hooks import routes as api
from cds_service.hooks.bodies import max_depth_exceeded, raw_depth_exceeded
from fhir_mappings import (
    load_terminology,
    map_order_context,
    map_patient_state,
    raw,
    terminology,
)
from fhir_mappings.memo import ContentMemo
from fhir_mappings.observations import is_relevant
from tests.conftest import make_app
from tests.mapping_builders import bundle, med_request, rx

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


def _remembered(memo: ContentMemo, func: Any, value: Any) -> Any:
    """func(value), answered from the memo when the same content was seen (as api.py does)."""
    key = orjson.dumps(value)
    found, result = memo.get(key)
    if not found:
        result = func(value)
        memo.put(key, result)
    return result


def test_memo_answers_repeats_from_the_cache_and_stays_bounded() -> None:
    memo = ContentMemo(size=2)
    calls: list[dict[str, Any]] = []

    def check(resource: dict[str, Any]) -> str:
        calls.append(resource)
        return str(resource.get("id"))

    answers = [_remembered(memo, check, {"id": i}) for i in (1, 1, 2, 1, 3, 2)]
    assert answers == ["1", "1", "2", "1", "3", "2"]
    # 1 is recomputed never (hit twice); 2 fell out when 3 came in (size 2) and is recomputed.
    assert [c["id"] for c in calls] == [1, 2, 3, 2]
    assert len(memo) == 2


def test_the_same_prefetch_later_reads_age_and_courses_from_the_clock() -> None:
    """Age and time on a drug are computed at the call's time, not remembered."""
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1980-11-30"},
        "medications": bundle(
            med_request(rx("8640", "prednisone"), authoredOn="2026-11-01T09:00:00Z"),
            med_request(rx("8640", "prednisone"), rid="mr2", status="completed"),
            med_request(rid="mr3", medicationReference={"reference": "#med"}),
        ),
        "labs": _lab("o1", 900),
    }
    later = NOW + timedelta(days=10)
    first = map_patient_state(prefetch, now=NOW)
    again = map_patient_state(orjson.loads(orjson.dumps(prefetch)), now=later)
    assert first.patient is not None and again.patient is not None
    assert (first.patient.age_years, again.patient.age_years) == (45, 46)
    active = [m.course.elapsed_days if m.course else None for m in again.medications]
    assert active[0] == pytest.approx(first.medications[0].course.elapsed_days + 10)  # type: ignore[union-attr]
    assert [m.value for m in again.get_series("ck").items] == [900.0]


def _lab(oid: str, value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2157-6"}]},
        "effectiveDateTime": "2026-11-01T10:00:00Z",
        "valueQuantity": {"value": value, "unit": "U/L", "system": "http://unitsofmeasure.org"},
    }


def test_a_changed_resource_is_mapped_anew() -> None:
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

    def double(resource: dict[str, Any]) -> int:
        return int(resource["n"]) * 2

    wrong: list[tuple[int, int]] = []

    def hammer(offset: int) -> None:
        for i in range(2000):
            n = (i * 7 + offset) % 50
            got = _remembered(memo, double, {"n": n})
            if got != n * 2:
                wrong.append((n, got))

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(memo) <= 8


@pytest.mark.parametrize("setting", ["MAPPING_MEMO_ENTRIES", "PREFETCH_MEMO_RESOURCES"])
def test_the_retired_mapping_memo_settings_still_start(tmp_path: Path, setting: str) -> None:
    """The mapping memos were removed; deployments that still set their sizes start."""
    make_app(tmp_path, **{setting: 5})
    state = map_patient_state({"labs": _lab("o1", 100)}, now=NOW)
    assert [m.value for m in state.get_series("ck").items] == [100.0]


def test_remembered_draft_orders_match_a_fresh_mapping() -> None:
    drafts = synth.draft_orders(now=NOW)
    selections = ["MedicationRequest/med-90002"]
    first = map_order_context(drafts, selections, now=NOW)
    again = map_order_context(drafts, selections, now=NOW + timedelta(hours=1))
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


def _card(card_uuid: str, suggestion_uuid: str) -> dict[str, Any]:
    return {
        "uuid": card_uuid,
        "summary": "Prednisone 1 mg/kg/day",
        "indicator": "info",
        "source": {"label": "Myopathy guideline"},
        "selectionBehavior": "at-most-one",
        "suggestions": [{"label": "Order prednisone", "uuid": suggestion_uuid}],
    }


def test_card_verdicts_are_remembered_across_uuids_but_not_for_malformed_ones() -> None:
    api.CARD_VERDICTS.clear()
    first = _card(str(uuid.uuid4()), str(uuid.uuid4()))
    assert api._card_errors(first) == {}
    assert api._card_errors(_card(str(uuid.uuid4()), str(uuid.uuid4()))) == {}
    assert api.CARD_VERDICTS.hits == 1
    bad_card = api._card_errors(_card("not-a-uuid", str(uuid.uuid4())))
    bad_suggestion = api._card_errors(_card(str(uuid.uuid4()), "1234"))
    assert "uuid" in bad_card
    assert "uuid" in bad_suggestion["suggestions"][0]
    assert api._card_errors({**first, "indicator": "urgent"})["indicator"]


TEXTS = st.sampled_from(["", "x", "Prednisone 60 mg", "y" * 139, "z" * 140, None, 7, ["a"]])
MAPPINGS = st.sampled_from(
    [{}, {"a": 1}, {"resourceType": "MedicationRequest", "id": "m"}, {"id": "m"}, [], "x", None]
)
ACTION = st.fixed_dictionaries(
    {"type": st.sampled_from(["create", "update", "delete", "remove"])},
    optional={"description": TEXTS, "resource": MAPPINGS, "resourceId": st.just("Type/id")},
)
SUGGESTION = st.fixed_dictionaries(
    {"label": TEXTS},
    optional={"actions": st.lists(ACTION, max_size=2) | st.just("x"), "isRecommended": st.just(1)},
)


@settings(max_examples=600, deadline=None)
@given(
    summary=TEXTS,
    extras=st.fixed_dictionaries(
        {},
        optional={
            "detail": TEXTS,
            "extension": MAPPINGS,
            "suggestions": st.lists(SUGGESTION | st.just("x"), max_size=2) | st.just({}),
            "selectionBehavior": st.just("any"),
        },
    ),
)
def test_a_remembered_card_verdict_is_the_one_the_schema_gives(
    summary: Any, extras: dict[str, Any]
) -> None:
    """Whatever the cards seen before (the memo is shared across examples), the verdict is
    CardSchema's own for this card: stand-ins in the key never turn a wrong card right."""
    card = {**_card(str(uuid.uuid4()), str(uuid.uuid4())), "summary": summary, **extras}
    assert api._card_errors(card) == api._CARD.validate(card)


def test_card_verdicts_are_shared_by_cards_differing_only_in_patient_values() -> None:
    api.CARD_VERDICTS.clear()
    for weight in (61, 74):
        card = {
            **_card(str(uuid.uuid4()), str(uuid.uuid4())),
            "summary": f"Prednisone {weight} mg/day for {weight} kg",
            "detail": f"Weight {weight} kg on 2026-01-0{weight % 9}",
            "extension": {"org.cds-myopathy.provenance": {"inputs": [f"Observation/{weight}"]}},
        }
        card["suggestions"][0]["actions"] = [
            {
                "type": "update",
                "description": f"Change the dose to {weight} mg",
                "resource": {"resourceType": "MedicationRequest", "id": str(weight)},
            }
        ]
        assert api._card_errors(card) == {}
    assert (api.CARD_VERDICTS.hits, api.CARD_VERDICTS.misses) == (1, 1)


def test_the_verdict_stand_ins_follow_the_card_schema() -> None:
    """verdict_shape assumes what these fields check: a change here must revisit it."""
    from marshmallow import fields, validate

    from cds_service.hooks import schemas

    def checks(schema: Any, name: str) -> list[Any]:
        field = schema._declared_fields[name]
        return [type(field), *[(type(v), v.min, v.max) for v in field.validators]]

    non_empty_text = [fields.String, (validate.Length, 1, None)]
    assert checks(schemas.CardSchema, "summary") == [
        fields.String,
        (validate.Length, 1, schemas.SUMMARY_MAX),
    ]
    assert checks(schemas.CardSchema, "detail") == non_empty_text
    assert checks(schemas.SuggestionSchema, "label") == non_empty_text
    assert checks(schemas.ActionSchema, "description") == non_empty_text
    for schema, name in ((schemas.CardSchema, "extension"), (schemas.ActionSchema, "resource")):
        field = schema._declared_fields[name]
        assert type(field) is fields.Dict
        assert field.key_field is None and field.value_field is None
        assert [(type(v), v.min, v.max) for v in field.validators] in ([], [non_empty_text[1]])
