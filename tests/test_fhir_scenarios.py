"""Every fixture scenario: fetching from the fixture FHIR server gives the full-prefetch cards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from cds_service.fhir.fixture_server import create_fixture_wsgi, running_server
from cds_service.fhir.scenarios import (
    Scenario,
    build_request,
    compare_cards,
    iter_scenarios,
    project_card,
)
from cds_service.fhir.store import FixtureStore
from cds_service.hooks.routes import UNAVAILABLE_KEY
from tests.conftest import FIXTURES, make_app

# Scenarios that pin the client's prefetch (an OperationOutcome, a missing key) describe
# data the client could not get; a server that has it legitimately gives other cards.
SCENARIOS = [s for s in iter_scenarios(FIXTURES) if not s.fixed_prefetch]
TOKEN = "scenario-token"


@pytest.fixture(scope="module")
def fhir_base() -> Iterator[str]:
    stores = {s.name: FixtureStore.from_bundle(s.patient_bundle) for s in SCENARIOS}
    with running_server(create_fixture_wsgi(stores, required_token=TOKEN)) as url:
        yield url


@pytest.fixture
def fetching_app(tmp_path: Path) -> Flask:
    return make_app(
        tmp_path,
        FHIR_SERVER_ALLOWLIST="http://127.0.0.1",
        FHIR_ALLOW_LOOPBACK_HTTP=True,
        FHIR_BUDGET_SECONDS=2.0,  # generous: this test is about equality, not speed
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fetching_gives_the_same_cards_as_full_prefetch(
    fetching_app: Flask, fhir_base: str, scenario: Scenario
) -> None:
    registry = fetching_app.extensions["cds_registry"]
    client = fetching_app.test_client()
    url = f"/cds-services/{scenario.service_id}"
    full = build_request(scenario, registry)
    fetched = build_request(scenario, registry, prefetch=False)
    fetched.pop("prefetch", None)
    fetched["fhirServer"] = f"{fhir_base}/{scenario.name}"
    fetched["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    want = client.post(url, json=full)
    got = client.post(url, json=fetched)
    assert got.status_code == want.status_code, got.get_data(as_text=True)
    want_cards = want.get_json().get("cards", [])
    got_body = got.get_json()
    assert compare_cards([project_card(c) for c in want_cards], got_body.get("cards", [])) == []
    if "prefetch" not in scenario.request:
        assert UNAVAILABLE_KEY not in (got_body.get("extension") or {})
