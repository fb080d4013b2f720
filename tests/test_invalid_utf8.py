"""Bytes that are not UTF-8 inside one prefetched resource: invalid is not absent.

That resource is reported in `org.cds-myopathy.unusable-inputs` and the rest of the answer
stands; before, one such Observation made the whole prefetch unmapped, every Condition and
result with it, and nothing told the user.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from flask import Flask
from flask.testing import FlaskClient

from cds_service.fhir.scenarios import build_request, compare_cards, iter_scenarios
from tests.conftest import FIXTURES

SCENARIOS = {s.name: s for s in iter_scenarios(FIXTURES)}
UNUSABLE = "org.cds-myopathy.unusable-inputs"
MARK = "\u2603drawn-late"  # replaced by a byte that is not UTF-8 once serialised


def _post_with_bad_byte(app: Flask, client: FlaskClient, name: str, resource_type: str) -> Any:
    scenario = SCENARIOS[name]
    body = copy.deepcopy(build_request(scenario, app.extensions["cds_registry"]))
    bundle = next(
        v
        for v in body["prefetch"].values()
        if isinstance(v, dict)
        and any(e["resource"]["resourceType"] == resource_type for e in v.get("entry", []))
    )
    first = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)
    twin = copy.deepcopy(first["resource"])
    twin["id"] = "bad-bytes"
    twin["status"] = twin["status"] + MARK  # a member every reader decodes
    bundle["entry"].append({"resource": twin})
    raw = orjson.dumps(body).replace(MARK.encode(), b"\xff")
    response = client.post(
        f"/cds-services/{scenario.service_id}", data=raw, content_type="application/json"
    )
    return scenario, response


def test_an_observation_that_is_not_utf8_costs_that_observation_only(
    app: Flask, client: FlaskClient
) -> None:
    scenario, response = _post_with_bad_byte(app, client, "mon-1-fires-rising", "Observation")
    assert response.status_code == 200, response.get_data(as_text=True)
    payload = response.get_json()
    assert compare_cards(scenario.expected, payload["cards"]) == []
    [item] = payload["extension"][UNUSABLE]
    assert item["resource"] == "Observation/bad-bytes"
    assert "not valid UTF-8" in item["reason"]


def test_a_medication_request_that_is_not_utf8_costs_that_request_only(
    app: Flask, client: FlaskClient
) -> None:
    scenario, response = _post_with_bad_byte(
        app, client, "cau-2-patient-view-active", "MedicationRequest"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    payload = response.get_json()
    assert compare_cards(scenario.expected, payload["cards"]) == []
    [item] = payload["extension"][UNUSABLE]
    assert item["resource"] == "MedicationRequest/bad-bytes"
