"""Lazy prefetch (fhir_mappings.lazy): the same values, the same mapping, the same answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

import msgspec
import orjson
import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from cds_service.config import DEFAULTS
from cds_service.fhir.scenarios import build_request, iter_scenarios
from cds_service.hooks.bodies import read_hook_json, read_json
from fhir_mappings import map_patient_state
from fhir_mappings.lazy import SMALLEST_TYPED_ENTRY, LazyResource, lazy, lazy_members
from tests.conftest import FIXTURES, LazyDecodes
from tests.mapping_builders import bundle, observation, quantity

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SCENARIOS = list(iter_scenarios(FIXTURES))


def _lazy(value: Any) -> Any:
    """As the edge reads a prefetch: each search Bundle within the entry bound read typed."""
    raw = msgspec.json.decode(orjson.dumps(value), type=msgspec.Raw)
    return lazy_members(raw, partial(lazy, max_entries=DEFAULTS["MAX_BUNDLE_ENTRIES"]))


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
    lazy_state = map_patient_state(_lazy({"k": value}), now=NOW)
    assert lazy_state == map_patient_state({"k": value}, now=NOW)
    assert all(i.reason != "not mapped: DecodeError" for i in lazy_state.issues)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_scenario_maps_the_same_lazy_or_decoded(app: Flask, scenario: Any) -> None:
    body = build_request(scenario, app.extensions["cds_registry"])
    prefetch = body.get("prefetch") or {}
    eager = map_patient_state(prefetch, now=NOW)
    assert map_patient_state(_lazy(prefetch), now=NOW) == eager


def _read(reader: Any, raw: bytes, **limits: Any) -> Any:
    """The body as `reader` reads it in a request; read_hook_json with the default entry bound."""
    if reader is read_hook_json:
        limits.setdefault("max_entries", DEFAULTS["MAX_BUNDLE_ENTRIES"])
    app = Flask(__name__)
    builder = EnvironBuilder(method="POST", data=raw, content_type="application/json")
    with app.request_context(builder.get_environ()):
        from flask import request

        return reader(request, max_bytes=1 << 24, max_depth=64, **limits)


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
        assert lazy_state == map_patient_state(prefetch, now=NOW)


@pytest.mark.parametrize("members", [{}, {"prefetch": None}, {"prefetch": {}}, {"extension": 1}])
def test_a_body_without_prefetch_members_reads_as_plain_json(members: dict[str, Any]) -> None:
    raw = json.dumps({"hook": "patient-view", **members}).encode()
    assert _read(read_hook_json, raw) == _read(read_json, raw)


def _both(prefetch: dict[str, Any]) -> tuple[Any, Any]:
    """The state mapped from the request's bytes (lazy, typed) and from decoded JSON."""
    from_bytes = map_patient_state(_lazy(prefetch), now=NOW)
    return from_bytes, map_patient_state(prefetch, now=NOW)


def test_a_bundle_of_valid_observations_is_read_typed_in_one_pass() -> None:
    labs = bundle(observation(value=quantity(900, "U/L")), observation(oid="o2", code="8867-4"))
    typed = _lazy({"labs": labs})["labs"].observations()
    assert typed is not None and [obs.id for _, obs in typed] == ["o1", "o2"]
    from_bytes, decoded = _both({"labs": labs})
    assert from_bytes == decoded
    assert [m.value for m in from_bytes.get_series("ck").items] == [900.0]  # 8867-4: no rule


@pytest.mark.parametrize(
    ("odd", "reported"),
    [
        (observation(oid="bad", value=quantity("900", "U/L")), ["Observation/bad"]),
        (observation(oid="bad", code="8867-4", value=quantity("x", "U/L")), []),  # no rule
        ({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}, []),
        ({"id": "no-type", "status": "final", "code": {}}, []),
        # a nested Bundle is read (its CK without a value reported)
        (
            {"resourceType": "Bundle", "entry": [{"resource": observation(oid="nested")}]},
            ["Observation/nested"],
        ),
    ],
)
def test_a_bundle_with_anything_else_is_read_entry_by_entry(
    odd: dict[str, Any], reported: list[str]
) -> None:
    """One pass needs every entry to be a valid Observation; else the per-resource path."""
    labs = bundle(observation(value=quantity(900, "U/L")), odd)
    assert _lazy({"labs": labs})["labs"].observations() is None
    from_bytes, decoded = _both({"labs": labs})
    assert from_bytes == decoded
    assert 900.0 in [m.value for m in from_bytes.get_series("ck").items]
    assert [i.resource for i in from_bytes.issues if i.resource.startswith("Obs")] == reported


def test_an_observation_in_two_keys_is_mapped_once_typed_or_not() -> None:
    ck = observation(value=quantity(900, "U/L"))
    prefetch = {"labs": bundle(ck), "more": bundle(ck, {"resourceType": "Basic", "id": "b"})}
    from_bytes, decoded = _both(prefetch)
    assert from_bytes == decoded
    assert len(from_bytes.get_series("ck").items) == 1


def _labs(count: int) -> dict[str, Any]:
    labs = [observation(value=quantity(100 + i, "U/L"), oid=f"o{i}") for i in range(count)]
    return {**bundle(*labs), "link": [{"relation": "self", "url": "https://ehr.example/x"}]}


def test_a_search_within_the_bound_is_read_typed_once_from_the_edge_to_the_mapping(
    lazy_decodes: LazyDecodes,
) -> None:
    prefetch = {"labs": _labs(5)}
    labs = _lazy(prefetch)["labs"]
    assert len(lazy_decodes.typed) == 1 and not lazy_decodes.light  # one pass, no light one
    assert labs["resourceType"] == "Bundle" and labs.get("link") == prefetch["labs"]["link"]
    assert labs.more_entries_than(4) and not labs.more_entries_than(5)
    state = map_patient_state({"labs": labs}, now=NOW)
    assert [m.value for m in state.series["ck"].items] == [100, 101, 102, 103, 104]
    assert len(lazy_decodes.typed) == 1 and not lazy_decodes.light and not lazy_decodes.scans
    assert state == map_patient_state(prefetch, now=NOW)


def test_a_search_read_typed_still_gives_its_entries_as_bytes_when_asked() -> None:
    labs = _lazy({"labs": _labs(3)})["labs"]
    entries = labs.entries()
    assert [resource["id"] for _, resource in entries] == ["o0", "o1", "o2"]


def test_a_search_past_the_bound_and_a_mixed_bundle_take_the_light_pass(
    lazy_decodes: LazyDecodes,
) -> None:
    mixed = bundle(observation(value=quantity(1, "U/L")), {"resourceType": "Condition"})
    raw = msgspec.Raw(orjson.dumps(mixed))
    read = lazy(raw, max_entries=1)  # past 42 bytes an entry: not read typed
    assert not lazy_decodes.typed and len(lazy_decodes.light) == 1
    read = lazy(raw, max_entries=100)
    assert len(lazy_decodes.typed) == 3 and len(lazy_decodes.light) == 2  # each search tried
    map_patient_state({"x": read}, now=NOW)
    assert len(lazy_decodes.typed) == 3  # and not tried again by the mapping


def test_a_bundle_no_search_fits_is_not_tried_again_to_count_its_entries(
    lazy_decodes: LazyDecodes,
) -> None:
    # Past 2n + 1 bytes the count would read a search in one pass; the edge has tried them all.
    entries = [observation(value=quantity(i, "U/L")) for i in range(30)]
    raw = msgspec.Raw(orjson.dumps(bundle(*entries, {"resourceType": "Condition"})))
    assert 2 * 300 + 1 < len(raw) <= SMALLEST_TYPED_ENTRY * 300
    read = lazy(raw, max_entries=300)
    assert len(lazy_decodes.typed) == 3
    assert not read.more_entries_than(300)  # 31 entries, counted by the list[Raw] scan
    assert len(lazy_decodes.typed) == 3 and len(lazy_decodes.scans) == 1


@pytest.mark.parametrize(("max_entries", "typed"), [(200, 1), (2, 0)])
def test_the_edge_reads_searches_typed_only_in_a_body_too_short_to_pass_the_bound(
    lazy_decodes: LazyDecodes, max_entries: int, typed: int
) -> None:
    # Before the bounds are checked, the edge decodes at most as many typed resources as one
    # Bundle may hold, whatever the number of prefetch keys.
    raw = json.dumps({"hook": "patient-view", "prefetch": {"labs": _labs(3)}}).encode()
    _read(read_hook_json, raw, max_entries=max_entries)
    assert len(lazy_decodes.typed) == typed
