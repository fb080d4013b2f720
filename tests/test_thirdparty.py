"""The CDS Hooks documentation examples in tests/data/thirdparty each get a deliberate answer."""

from __future__ import annotations

import orjson
import pytest
from flask.testing import FlaskClient

from tests.conftest import THIRDPARTY

# file -> (service, expected status). Each status is a decision, explained beside it.
CASES = {
    # Spec example patient-view request; prefetch has only `patientToGreet`, so the service
    # would have to fetch from its fhirServer, a plain-http host nobody allowed: 403, and
    # nothing is fetched.
    "cdshooks_spec_block1_patient-view-request-with-prefetch.json": ("myopathy-patient-view", 403),
    # The order-sign example is only the `context` block: no hook, no hookInstance -> 400
    # naming both fields.
    "cdshooks_order-sign_request_block1.json": ("myopathy-order-sign", 400),
    # The retired medication-prescribe hook: no service answers it -> 400 naming the hook.
    "cdshooks_medication-prescribe_request_block0.json": ("myopathy-order-select", 400),
}


def _load(name: str) -> dict:
    return dict(orjson.loads((THIRDPARTY / name).read_bytes()))


@pytest.mark.parametrize("name", sorted(CASES))
def test_documentation_example(client: FlaskClient, name: str) -> None:
    service, status = CASES[name]
    response = client.post(f"/cds-services/{service}", json=_load(name))
    assert response.status_code == status, response.get_data(as_text=True)
    assert "error" in response.get_json() or "cards" in response.get_json()


def test_order_sign_example_with_conditions_is_answered(client: FlaskClient) -> None:
    """Its draft orders (a NutritionOrder, doseAndRate as an object) are tolerated: 200."""
    body = _load("cdshooks_order-sign_request_block1.json")
    body.update({"hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"})
    body["prefetch"] = {
        "patient": {"resourceType": "Patient", "id": body["context"]["patientId"]},
        "conditions": None,
    }
    response = client.post("/cds-services/myopathy-order-sign", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["cards"] == []


def test_snipped_prefetch_example_is_tolerated(client: FlaskClient) -> None:
    """Spec block 7: '...' keys and a bare-string prefetch value must not break us."""
    body = _load("cdshooks_spec_block7_prefetch-filled-with-snipped-keys.json")
    body.update(
        {
            "hook": "patient-view",
            "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/example", "patientId": "1288992"},
        }
    )
    body["prefetch"]["conditions"] = None
    response = client.post("/cds-services/myopathy-patient-view", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["cards"] == []
