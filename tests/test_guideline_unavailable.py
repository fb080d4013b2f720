"""Missing-data branches where a prefetch key failed: through the real endpoint, end to end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from cds_service.fhir.scenarios import compare_cards, roll
from tests.guideline_cardcheck import check_card
from tests.guideline_fixture_scenarios import UNAVAILABLE

PROVENANCE = "org.cds-myopathy.provenance"


@pytest.mark.parametrize("name", sorted(UNAVAILABLE))
def test_unavailable_input_is_named_on_the_cards(client: FlaskClient, name: str) -> None:
    _patient, request, expected = UNAVAILABLE[name]()
    body = roll(request, datetime.now(UTC))
    body = {"hookInstance": "0d2c9a3e-5a53-4f8e-9d47-0a7f8f1b2c3d", **body}
    body.pop("service")
    response = client.post(f"/cds-services/{request['service']}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    assert compare_cards(expected, cards) == []
    failed = {
        k
        for k, v in request["prefetch"].items()
        if isinstance(v, dict) and v.get("resourceType") == "OperationOutcome"
    }
    for card in cards:
        check_card(card)
    named = [c for c in cards if set(c["extension"][PROVENANCE].get("unavailable", [])) & failed]
    assert named, "at least one card must say which input could not be retrieved"
    for card in named:
        assert "Could not be retrieved, so not checked" in card["detail"]
