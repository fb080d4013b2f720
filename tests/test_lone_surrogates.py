"""A lone UTF-16 surrogate escape ("\\udcff") in a hook body: invalid is not absent.

Inside one resource (prefetch, context.draftOrders) it makes that resource unusable, reported
in `org.cds-myopathy.unusable-inputs` (a Condition also through SCOPE-1), and the rest of the
answer stands; anywhere else (hook, context ids, a prefetch key) it is a 400 naming the member.
Python's json.dumps writes a lone surrogate as such an escape, as a careless client would.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.fhir.scenarios import Scenario, build_request, compare_cards, iter_scenarios
from cds_service.hooks import bodies
from cds_service.hooks.schemas import HookResponseSchema
from fhir_mappings.surrogates import MARK, mark_lone_surrogates
from tests.conftest import FIXTURES

UNUSABLE = "org.cds-myopathy.unusable-inputs"
LONE = "\udcff"
SCENARIOS = {s.name: s for s in iter_scenarios(FIXTURES)}


def _request(app: Flask, name: str) -> tuple[Scenario, dict[str, Any]]:
    scenario = SCENARIOS[name]
    # A deep copy: build_request shares the scenario's data, which other tests read.
    return scenario, copy.deepcopy(build_request(scenario, app.extensions["cds_registry"]))


def _post(client: FlaskClient, scenario: Scenario, body: dict[str, Any]) -> Any:
    raw = json.dumps(body)  # ensure_ascii: a lone surrogate becomes the escape "\udcff"
    assert "\\udcff" in raw or LONE not in str(body)
    return client.post(
        f"/cds-services/{scenario.service_id}", data=raw, content_type="application/json"
    )


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    payload: dict[str, Any] = response.get_json()
    assert HookResponseSchema().validate(payload) == {}
    return payload


def _bundle_holding(body: dict[str, Any], resource_type: str) -> dict[str, Any]:
    for value in body["prefetch"].values():
        entries = value.get("entry") if isinstance(value, dict) else None
        if entries and any(e["resource"]["resourceType"] == resource_type for e in entries):
            return value  # type: ignore[no-any-return]
    raise AssertionError(f"no prefetch Bundle holds a {resource_type}")


def _copy_of_first(bundle: dict[str, Any], resource_type: str, new_id: str) -> dict[str, Any]:
    first = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)
    twin = copy.deepcopy(first["resource"])
    twin["id"] = new_id
    return twin


def _unusable(payload: dict[str, Any]) -> list[dict[str, str]]:
    return payload.get("extension", {}).get(UNUSABLE, [])  # type: ignore[no-any-return]


def _says_lone_surrogate(item: dict[str, str], resource: str) -> bool:
    return item["resource"] == resource and "lone UTF-16 surrogate (\\udcff)" in item["reason"]


# ---- inside one resource: that resource is unusable, the rest stands ---------------------


def test_a_lone_surrogate_in_one_prefetch_observation_costs_that_observation_only(
    app: Flask, client: FlaskClient
) -> None:
    scenario, body = _request(app, "mon-1-fires-rising")
    bundle = _bundle_holding(body, "Observation")
    bad = _copy_of_first(bundle, "Observation", "o-bad")
    bad["note"] = [{"text": f"drawn late {LONE}"}]
    bundle["entry"].append({"resource": bad})
    payload = _ok(_post(client, scenario, body))
    assert compare_cards(scenario.expected, payload["cards"]) == []
    [item] = _unusable(payload)
    assert _says_lone_surrogate(item, "Observation/o-bad")


def test_a_lone_surrogate_in_the_observation_a_card_rests_on_is_not_read_as_data(
    app: Flask, client: FlaskClient
) -> None:
    scenario, body = _request(app, "mon-1-fires-rising")
    bundle = _bundle_holding(body, "Observation")
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            entry["resource"]["note"] = [{"text": LONE}]
    payload = _ok(_post(client, scenario, body))
    assert not any("CK rising" in c["summary"] for c in payload["cards"])
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert [i["resource"] for i in _unusable(payload)] == [f"Observation/{i}" for i in ids]


def test_a_lone_surrogate_in_a_second_diagnosis_record_is_reported_beside_the_valid_one(
    app: Flask, client: FlaskClient
) -> None:
    scenario, body = _request(app, "is-1-fires")
    bundle = _bundle_holding(body, "Condition")
    bad = _copy_of_first(bundle, "Condition", "c-bad")
    bad["code"]["text"] = f"Polymyositis {LONE}"
    bundle["entry"].append({"resource": bad})
    payload = _ok(_post(client, scenario, body))
    scope = [c for c in payload["cards"] if "could not be used" in c["summary"]]
    others = [c for c in payload["cards"] if c not in scope]
    assert compare_cards(scenario.expected, others) == []
    [card] = scope
    assert card["indicator"] == "info" and "Condition/c-bad" in card["detail"]
    [item] = _unusable(payload)
    assert _says_lone_surrogate(item, "Condition/c-bad")


def test_a_lone_surrogate_in_the_only_diagnosis_record_is_a_scope_warning(
    app: Flask, client: FlaskClient
) -> None:
    scenario, body = _request(app, "is-1-fires")
    bundle = _bundle_holding(body, "Condition")
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Condition":
            entry["resource"]["code"]["text"] = f"Polymyositis {LONE}"
    payload = _ok(_post(client, scenario, body))
    [card] = payload["cards"]
    assert card["indicator"] == "warning" and "could not be used" in card["summary"]
    assert "it seems to record: myopathy" in card["detail"]  # read leniently, only to say so
    assert all("lone UTF-16 surrogate" in i["reason"] for i in _unusable(payload))


def test_a_lone_surrogate_in_another_draft_order_costs_that_draft_only(
    app: Flask, client: FlaskClient
) -> None:
    scenario, body = _request(app, "cau-1-fires")
    drafts = body["context"]["draftOrders"]
    bad = _copy_of_first(drafts, "MedicationRequest", "mr-bad")
    bad["note"] = [{"text": f"take with food {LONE}"}]
    drafts["entry"].append({"resource": bad})
    payload = _ok(_post(client, scenario, body))
    assert compare_cards(scenario.expected, payload["cards"]) == []
    [item] = _unusable(payload)
    assert _says_lone_surrogate(item, "MedicationRequest/mr-bad")
    assert "mr-bad" not in json.dumps(payload["cards"])  # never sent back in a suggestion


def test_a_lone_surrogate_in_the_selected_draft_order_is_reported_not_evaluated(
    app: Flask, client: FlaskClient
) -> None:
    scenario, body = _request(app, "cau-1-fires")
    [entry] = body["context"]["draftOrders"]["entry"]
    entry["resource"]["medicationCodeableConcept"]["text"] = f"Cyclobenzaprine {LONE}"
    payload = _ok(_post(client, scenario, body))
    assert not any("cyclobenzaprine" in c["summary"].lower() for c in payload["cards"])
    [item] = _unusable(payload)
    assert _says_lone_surrogate(item, "MedicationRequest/mr1")


# ---- in the envelope: a 400 naming the member ----------------------------------------------


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("context.patientId", lambda b: b["context"].update(patientId=f"fx{LONE}")),
        ("context.userId", lambda b: b["context"].update(userId=f"Practitioner/{LONE}")),
        ("hook", lambda b: b.update(hook=f"patient-view{LONE}")),
        ("prefetch.conditions\\udcff", lambda b: b["prefetch"].update({f"conditions{LONE}": None})),
    ],
)
def test_a_lone_surrogate_in_the_envelope_is_a_400_naming_the_member(
    app: Flask, client: FlaskClient, where: str, change: Any
) -> None:
    scenario, body = _request(app, "is-1-fires")
    change(body)
    response = _post(client, scenario, body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request"
    assert (
        error["message"].startswith(where) and "lone UTF-16 surrogate (\\udcff)" in error["message"]
    )
    assert list(error["details"]) == [where]


def test_malformed_json_beside_a_lone_surrogate_stays_malformed(
    app: Flask, client: FlaskClient
) -> None:
    scenario, body = _request(app, "is-1-fires")
    body["context"]["patientId"] = LONE
    raw = json.dumps(body)[:-1]  # truncated as well
    response = client.post(
        f"/cds-services/{scenario.service_id}", data=raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("malformed JSON")


# ---- what is not a lone surrogate is left alone, and costs nothing --------------------------


@pytest.mark.parametrize(
    "text",
    [
        "\U0001f600",  # a pair of escapes: one character
        "\\udcff",  # an escaped backslash, then the letters u d c f f
        "\u00e9",
    ],
)
def test_text_that_only_looks_like_a_lone_surrogate_is_data(
    app: Flask, client: FlaskClient, text: str
) -> None:
    scenario, body = _request(app, "cau-1-fires")
    [entry] = body["context"]["draftOrders"]["entry"]
    entry["resource"]["note"] = [{"text": text}]
    payload = _ok(_post(client, scenario, body))
    assert compare_cards(scenario.expected, payload["cards"]) == []
    assert _unusable(payload) == []


def test_a_valid_body_never_looks_for_lone_surrogates(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(raw: bytes) -> bytes | None:
        raise AssertionError("the failure path ran on a valid body")

    monkeypatch.setattr(bodies, "mark_lone_surrogates", refuse)
    scenario, body = _request(app, "mon-1-fires-rising")
    payload = _ok(_post(client, scenario, body))
    assert compare_cards(scenario.expected, payload["cards"]) == []


# ---- the marking itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "lone"),
    [
        (rb'"\udcff"', [b"dcff"]),
        (rb'"\ud83d"', [b"d83d"]),
        (rb'"\ud83d\ude00"', []),
        (rb'"\uD83D\uDE00"', []),
        (rb'"\\udcff"', []),
        (rb'"\\\udcff"', [b"dcff"]),
        (rb'"\ud800\ud800\udc00"', [b"d800"]),
        (rb'"\udc00\udc00"', [b"dc00", b"dc00"]),
        (rb'"\ud83d\\ude00"', [b"d83d"]),
        (rb'{"k\uDCFFx": "\u00e9"}', [b"DCFF"]),
    ],
)
def test_only_lone_surrogate_escapes_are_marked(raw: bytes, lone: list[bytes]) -> None:
    marked = mark_lone_surrogates(raw)
    if not lone:
        assert marked is None
        orjson.loads(raw)  # the strict decoders accept it as it is
        return
    assert marked is not None
    assert [marked[i + len(MARK) : i + len(MARK) + 4] for i in _find_all(marked, MARK)] == lone
    msgspec.json.decode(marked)  # marked, the document decodes
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(raw)


def _find_all(data: bytes, part: bytes) -> list[int]:
    found, start = [], data.find(part)
    while start >= 0:
        found.append(start)
        start = data.find(part, start + 1)
    return found
