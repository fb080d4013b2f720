"""CDS Hooks 2.0.1 protocol: discovery, request validation, the one error shape, CORS."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.hooks.schemas import DiscoverySchema
from cds_service.version import __version__

PV = "/cds-services/myopathy-patient-view"
OS = "/cds-services/myopathy-order-select"


def pv_request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1"},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []},
        },
    }
    body.update(changes)
    return body


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == status
    assert error["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    if code:
        assert error["code"] == code
    return dict(error)


def test_discovery_lists_the_guideline_services(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    body = response.get_json()
    assert DiscoverySchema().validate(body) == {}
    hooks = {s["id"]: s["hook"] for s in body["services"]}
    assert hooks["myopathy-patient-view"] == "patient-view"
    assert hooks["myopathy-order-select"] == "order-select"
    for service in body["services"]:
        assert service["title"] and service["description"]
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        assert "http://loinc.org|29463-7" in prefetch["weight"]
        assert "http://loinc.org|2157-6" in prefetch["labs"]
        for key in ("medications", "conditions", "allergies"):
            assert "patient={{context.patientId}}" in prefetch[key]


def test_patient_out_of_scope_gets_no_cards(client: FlaskClient) -> None:
    response = client.post(PV, json=pv_request())
    assert response.status_code == 200
    assert response.get_json()["cards"] == []


def test_null_prefetch_values_are_tolerated(client: FlaskClient) -> None:
    body = pv_request()
    body["prefetch"].update({"medications": None, "weight": None, "labs": None})
    response = client.post(PV, json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"] == []


def test_missing_required_prefetch_is_412_naming_it(client: FlaskClient) -> None:
    body = pv_request(prefetch={"patient": {"resourceType": "Patient", "id": "p1"}})
    error = assert_error(client.post(PV, json=body), 412, "prefetch_unavailable")
    assert "conditions" in error["details"]["unavailable"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hookInstance": "not-a-uuid"}, "hookInstance"),
        ({"hook": None}, "hook"),
        ({"context": "p1"}, "context"),
        ({"context": {"userId": "Practitioner/1"}}, "context.patientId"),
        # Spec: patientId and encounterId are FHIR ids; they are put into prefetch URLs.
        (
            {"context": {"userId": "Practitioner/1", "patientId": "p1/../Group/x?_count=1"}},
            "context.patientId",
        ),
        (
            {"context": {"userId": "Practitioner/1", "patientId": "p1", "encounterId": "e 1"}},
            "context.encounterId",
        ),
        (
            {
                "fhirAuthorization": {
                    "access_token": "t",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "s",
                    "subject": "x",
                }
            },
            "fhirServer",
        ),
        ({"fhirServer": "ftp://example.org"}, "fhirServer"),
        # The OpenAPI document's patterns are ECMA 262: `$` is the end, before a newline too.
        ({"fhirServer": "https://example.org/fhir\n"}, "fhirServer"),
        ({"context": {"userId": "Practitioner/1", "patientId": "p1\n"}}, "context.patientId"),
        ({"prefetch": []}, "prefetch"),
    ],
)
def test_invalid_requests_are_400_with_the_field(
    client: FlaskClient, change: dict[str, Any], field: str
) -> None:
    error = assert_error(client.post(PV, json=pv_request(**change)), 400, "invalid_request")
    assert field in error["details"]


def test_hook_must_match_the_service(client: FlaskClient) -> None:
    error = assert_error(client.post(OS, json=pv_request()), 400, "invalid_request")
    assert "hook" in error["details"]


def test_order_select_needs_draft_orders_and_selections(client: FlaskClient) -> None:
    body = pv_request(hook="order-select")
    error = assert_error(client.post(OS, json=body), 400)
    assert {"context.draftOrders", "context.selections"} <= set(error["details"])


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        (
            "post",
            PV,
            {"data": "{not json", "content_type": "application/json"},
            400,
            "invalid_request",
        ),
        ("post", PV, {"data": "[]", "content_type": "application/json"}, 400, None),
        ("post", PV, {"data": "hook=patient-view", "content_type": "text/plain"}, 415, None),
        ("post", "/cds-services/no-such-service", {"json": {}}, 404, "unknown_service"),
        ("get", PV, {}, 405, None),
        ("delete", "/cds-services", {}, 405, None),
        ("get", "/nowhere", {}, 404, None),
        ("post", PV + "/feedback", {"json": {"feedback": []}}, 400, "invalid_request"),
    ],
)
def test_errors_share_one_json_shape(
    client: FlaskClient,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    assert_error(getattr(client, method)(path, **kwargs), status, code)


def test_body_over_the_size_limit_is_413(tmp_path: Any) -> None:
    from tests.conftest import make_app

    client = make_app(tmp_path, MAX_REQUEST_BYTES=2048).test_client()
    body = pv_request()
    body["prefetch"]["padding"] = {"resourceType": "Basic", "text": "x" * 4096}
    assert_error(client.post(PV, json=body), 413)


def test_json_nested_too_deep_is_400(client: FlaskClient) -> None:
    deep: Any = {}
    for _ in range(200):
        deep = {"a": deep}
    body = pv_request()
    body["extension"] = {"org.example.deep": deep}
    error = assert_error(client.post(PV, json=body), 400)
    assert "deeper" in error["message"]


def test_unknown_fields_and_extensions_are_tolerated(client: FlaskClient) -> None:
    body = pv_request(extension={"org.example.x": {"y": 1}}, somethingNew=True)
    body["context"]["futureField"] = {"a": 1}
    assert client.post(PV, json=body).status_code == 200


def test_cors_preflight_needs_no_auth_and_allows_the_sandbox(tmp_path: Any) -> None:
    from tests.conftest import make_app

    client = make_app(tmp_path, AUTH="required").test_client()
    response = client.options(
        PV,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok", "version": __version__}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["knowledgeVersion"]


def test_openapi_has_a_call_and_feedback_path_per_discovered_service(
    client: FlaskClient,
) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    services = {s["id"]: s["hook"] for s in client.get("/cds-services").get_json()["services"]}
    unknown_id = "/cds-services/{service_id}"
    expected = {"/cds-services", unknown_id, f"{unknown_id}/feedback"}
    for service_id in services:
        expected |= {f"/cds-services/{service_id}", f"/cds-services/{service_id}/feedback"}
    assert set(doc["paths"]) == expected
    for service_id, hook in services.items():
        call = doc["paths"][f"/cds-services/{service_id}"]["post"]
        request = call["requestBody"]["content"]["application/json"]["schema"]
        assert request["properties"]["hook"]["enum"] == [hook]
        context = request["properties"]["context"]["$ref"].rsplit("/", 1)[-1]
        assert {"userId", "patientId"} <= set(doc["components"]["schemas"][context]["required"])
        patient_id = request["properties"]["prefetch"]["properties"]["patient"]["properties"]["id"]
        assert patient_id["x-cds-equals"] == "#/context/patientId"
    unknown = doc["paths"]["/cds-services/{service_id}"]["post"]
    assert unknown["parameters"][0]["schema"]["not"]["enum"] == list(services)
    assert "404" in unknown["responses"] and "200" not in unknown["responses"]
    order_select = doc["components"]["schemas"]["OrderSelectContext"]
    assert set(order_select["required"]) == {"userId", "patientId", "draftOrders", "selections"}
    assert order_select["properties"]["draftOrders"]["properties"]["resourceType"]["enum"] == [
        "Bundle"
    ]
    assert {"HookResponse", "Feedback", "PatientViewContext"} <= set(doc["components"]["schemas"])
