"""Every fixture scenario through the real endpoint: expected cards, all spec-valid."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.fhir.scenarios import Scenario, build_request, compare_cards, iter_scenarios
from cds_service.hooks.schemas import HookResponseSchema
from tests.conftest import FIXTURES

SCENARIOS = list(iter_scenarios(FIXTURES))


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 1


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(app: Flask, client: FlaskClient, scenario: Scenario) -> None:
    body = build_request(scenario, app.extensions["cds_registry"])
    response = client.post(f"/cds-services/{scenario.service_id}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    payload = response.get_json()
    assert HookResponseSchema().validate(payload) == {}
    assert scenario.expected is not None, f"{scenario.name} has no expected.json"
    assert compare_cards(scenario.expected, payload["cards"]) == []
