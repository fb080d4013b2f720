"""Lazy prefetch (fhir_mappings.lazy): the same values, the same mapping, the same answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from cds_service.fhir.scenarios import build_request, iter_scenarios
from cds_service.hooks.bodies import read_hook_json, read_json
from fhir_mappings import map_patient_state
from fhir_mappings.lazy import LazyResource, lazy, lazy_members
from fhir_mappings.memo import prefetch_digest
from fhir_mappings.state import PREFETCH_MEMO, forget_memos
from tests.conftest import FIXTURES
from tests.mapping_builders import bundle, observation, quantity

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SCENARIOS = list(iter_scenarios(FIXTURES))


def _lazy(value: Any) -> Any:
    return lazy_members(msgspec.json.decode(orjson.dumps(value), type=msgspec.Raw))


def test_light_members_are_read_without_decoding_the_resource() -> None:
    res = _lazy({"x": {"resourceType": "Bundle", "id": None, "link": [{"relation": "next"}]}})
    value = res["x"]
    assert isinstance(value, LazyResource)
    assert value["resourceType"] == "Bundle" and value["id"] is None
    assert value.get("link") == [{"relation": "next"}] and value.get("meta") is None
    assert value._value is not None  # meta is not a light member: decoded (and kept)
    other = lazy(msgspec.Raw(b'{"resourceType": "Patient"}'))
    assert "id" not in other and other.get("id", "absent") == "absent"
    assert other._value is None


@pytest.mark.parametrize(
    "value",
    [
        {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}, 3]},
        {"resourceType": "Bundle", "entry": {"resource": {"resourceType": "Patient"}}},
        {"resourceType": "Bundle", "entry": None},
        {"resourceType": "Bundle", "entry": []},
        {"resourceType": "Bundle", "type": "searchset", "total": 0},  # no entry at all
        {"resourceType": "Bundle", "entry": [{"fullUrl": "urn:a"}, {"resource": None}]},
        {"resourceType": 5, "id": ["x"]},
        {},
    ],
)
def test_odd_shapes_equal_their_decoded_value(value: dict[str, Any]) -> None:
    res = _lazy({"k": value})["k"]
    assert res == value and dict(res) == value and len(res) == len(value)
    forget_memos()
    lazy_state = map_patient_state(_lazy({"k": value}), now=NOW)
    forget_memos()
    assert lazy_state == map_patient_state({"k": value}, now=NOW)
    assert all(i.reason != "not mapped: DecodeError" for i in lazy_state.issues)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_scenario_maps_the_same_lazy_or_decoded(app: Flask, scenario: Any) -> None:
    body = build_request(scenario, app.extensions["cds_registry"])
    prefetch = body.get("prefetch") or {}
    forget_memos()
    eager = map_patient_state(prefetch, now=NOW)
    forget_memos()
    assert map_patient_state(_lazy(prefetch), now=NOW) == eager


def _read(reader: Any, raw: bytes) -> Any:
    app = Flask(__name__)
    builder = EnvironBuilder(method="POST", data=raw, content_type="application/json")
    with app.request_context(builder.get_environ()):
        from flask import request

        return reader(request, max_bytes=1 << 24, max_depth=64)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    prefetch=st.dictionaries(
        st.text(max_size=4),
        JSON | st.fixed_dictionaries({"resourceType": st.just("Bundle"), "entry": JSON}),
    )
    | JSON
)
def test_hook_bodies_read_the_same_as_plain_json(prefetch: Any) -> None:
    body = {"hook": "patient-view", "context": {"patientId": "p"}, "prefetch": prefetch}
    raw = json.dumps(body).encode()
    assert _read(read_hook_json, raw) == _read(read_json, raw)
    if isinstance(prefetch, dict):  # and never raise when mapped
        lazy_state = map_patient_state(_read(read_hook_json, raw)["prefetch"], now=NOW)
        forget_memos()
        assert lazy_state == map_patient_state(prefetch, now=NOW)


def test_a_new_search_of_the_same_record_is_recognised() -> None:
    """Searchset Bundles get a new id and lastUpdated on every search: same resources."""
    forget_memos()
    labs = bundle(observation(value=quantity(900, "U/L")))
    first = {"labs": {**labs, "id": "search-1", "meta": {"lastUpdated": "2026-11-25T10:00:00Z"}}}
    again = {"labs": {**labs, "id": "search-2", "meta": {"lastUpdated": "2026-11-25T10:05:00Z"}}}
    assert prefetch_digest(_lazy(first)) == prefetch_digest(_lazy(again))
    assert prefetch_digest(first) == prefetch_digest(again)
    map_patient_state(_lazy(first), now=NOW)
    state = map_patient_state(_lazy(again), now=NOW)
    assert PREFETCH_MEMO.hits == 1
    assert [m.value for m in state.get_series("ck").items] == [900.0]


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["entry"][0]["resource"]["valueQuantity"].update(value=901),
        lambda b: b["entry"][0].update(fullUrl="urn:uuid:other"),
        lambda b: b["entry"].append({"resource": observation(oid="o2")}),
    ],
)
def test_a_changed_resource_or_entry_changes_the_digest(change: Any) -> None:
    labs = bundle(observation(value=quantity(900, "U/L")))
    labs["entry"][0]["fullUrl"] = "urn:uuid:o1"
    changed = json.loads(json.dumps(labs))
    change(changed)
    assert prefetch_digest(_lazy({"labs": labs})) != prefetch_digest(_lazy({"labs": changed}))
    assert prefetch_digest({"labs": labs}) != prefetch_digest({"labs": changed})
