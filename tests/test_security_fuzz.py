"""Fuzzing: hypothesis hook requests and schemathesis against our own /openapi.json (no 5xx)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from cds_service.guideline.needs import PREFETCH
from cds_service.security.local_issuer import LocalIssuer
from tests.conftest import make_app

SERVICES = {"myopathy-patient-view": "patient-view", "myopathy-order-select": "order-select"}
ISSUER = LocalIssuer(iss="https://fuzz.example.org")

# --- hypothesis: hook requests, valid-looking and hostile ------------------------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
junk_json = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=20)
resource_types = st.sampled_from(
    ["Patient", "Condition", "MedicationRequest", "Observation", "AllergyIntolerance", "X"]
)


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": draw(resource_types), "id": draw(ids)}
    extra = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "status",
                    "code",
                    "subject",
                    "reasonCode",
                    "medicationCodeableConcept",
                    "effectiveDateTime",
                    "valueQuantity",
                    "dosageInstruction",
                ]
            ),
            junk_json,
            max_size=4,
        )
    )
    return resource | extra


def bundles(entries: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    entries = resources() if entries is None else entries
    return st.fixed_dictionaries(
        {
            "resourceType": st.just("Bundle"),
            "entry": st.lists(st.fixed_dictionaries({"resource": entries}), max_size=5),
        },
        optional={"type": st.sampled_from(["searchset", "collection", "bogus"])},
    )


operation_outcome = st.just({"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]})
prefetch_values = st.none() | operation_outcome | bundles() | resources() | junk_json


@st.composite
def hook_requests(draw: st.DrawFn, hook: str) -> dict[str, Any]:
    """A CDS Hooks request for `hook`: sometimes right, often subtly or grossly wrong."""
    patient = draw(ids)
    context: dict[str, Any] = {"userId": f"Practitioner/{draw(ids)}", "patientId": patient}
    if hook != "patient-view":
        drafts = draw(bundles(resources().map(lambda r: r | {"resourceType": "MedicationRequest"})))
        context["draftOrders"] = drafts
        refs = [f"MedicationRequest/{e['resource']['id']}" for e in drafts["entry"]]
        context["selections"] = draw(st.lists(st.sampled_from(refs), max_size=2)) if refs else []
    body: dict[str, Any] = {
        "hook": draw(st.sampled_from([hook, hook, "order-sign", "x"])),
        "hookInstance": draw(st.uuids().map(str) | st.text(max_size=10)),
        "context": draw(st.just(context) | junk_json),
        "prefetch": draw(st.dictionaries(st.sampled_from(sorted(PREFETCH)), prefetch_values)),
    }
    if draw(st.booleans()):
        body["fhirServer"] = draw(st.sampled_from(["https://fhir.example.org", "not a url", ""]))
    if draw(st.booleans()):
        body["extension"] = draw(junk_json)
    return body


@st.composite
def feedback_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Spec 'Feedback' bodies as EHRs send them, with hostile variations."""
    uuids = st.uuids().map(str)
    item: dict[str, Any] = {
        "card": draw(uuids | st.text(max_size=8)),
        "outcome": draw(st.sampled_from(["accepted", "overridden", "ignored"])),
        "outcomeTimestamp": draw(
            st.sampled_from(["2026-11-25T10:00:00Z", "2026-11-25T10:00:00.5+01:00", "yesterday"])
        ),
    }
    if item["outcome"] == "accepted" or draw(st.booleans()):
        item["acceptedSuggestions"] = draw(
            st.lists(st.fixed_dictionaries({"id": uuids}), max_size=2)
        )
    if draw(st.booleans()):
        reason = {"code": draw(st.text(max_size=8)), "system": "http://example.org/reasons"}
        item["overrideReason"] = {"reason": reason} | draw(
            st.fixed_dictionaries({}, optional={"userComment": st.text(max_size=20)})
        )
    return {"feedback": draw(st.lists(st.just(item) | junk_json, min_size=0, max_size=3))}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return make_app(tmp_path_factory.mktemp("fuzz"))


def _assert_well_formed(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    if response.status_code >= 400:
        assert body["error"]["status"] == response.status_code
    else:
        assert isinstance(body["cards"], list)


@pytest.mark.parametrize("service_id", sorted(SERVICES))
def test_hypothesis_hook_requests_never_get_a_5xx(fuzz_app: Flask, service_id: str) -> None:
    client = fuzz_app.test_client()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=hook_requests(SERVICES[service_id]))
    def run(body: dict[str, Any]) -> None:
        response = client.post(f"/cds-services/{service_id}", json=body)
        _assert_well_formed(response)

    run()


@pytest.mark.parametrize("service_id", sorted(SERVICES))
def test_hypothesis_feedback_never_gets_a_5xx(fuzz_app: Flask, service_id: str) -> None:
    client = fuzz_app.test_client()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=feedback_bodies())
    def run(body: dict[str, Any]) -> None:
        response = client.post(f"/cds-services/{service_id}/feedback", json=body)
        assert response.status_code < 500, response.get_data(as_text=True)

    run()


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=300) | junk_json.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_never_get_a_5xx(fuzz_app: Flask, raw: bytes) -> None:
    response = fuzz_app.test_client().post(
        "/cds-services/myopathy-patient-view", data=raw, content_type="application/json"
    )
    assert response.status_code in (400, 412, 413, 200), response.status_code


@settings(max_examples=40, deadline=None)
@given(header=st.text(max_size=200) | st.builds(lambda t: f"Bearer {t}", st.text(max_size=300)))
def test_arbitrary_authorization_headers_get_401_never_5xx(
    secure_fuzz_app: Flask, header: str
) -> None:
    try:
        response = secure_fuzz_app.test_client().get(
            "/cds-services", headers={"Authorization": header}
        )
    except ValueError:
        return  # werkzeug refuses headers with newlines before they reach the app
    assert response.status_code == 401


@pytest.fixture(scope="module")
def secure_fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    tmp = tmp_path_factory.mktemp("secure-fuzz")
    issuers = tmp / "issuers.json"
    issuers.write_text(json.dumps({"issuers": [ISSUER.issuer_entry()]}))
    return make_app(
        tmp, AUTH="required", TRUSTED_ISSUERS_FILE=str(issuers), PUBLIC_BASE_URL="https://cds.test"
    )


# --- schemathesis against the app's own OpenAPI document --------------------------------------

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


# Each service's call, one feedback path (all three share the Feedback schema), and unknown
# ids; tests/adversarial/test_served_schemathesis.py fuzzes every operation of the document.
LISTED = ["myopathy-patient-view", "myopathy-order-select", "myopathy-order-sign"]
OPERATIONS = [
    "GET /cds-services",
    *(f"POST /cds-services/{service}" for service in LISTED),
    "POST /cds-services/myopathy-patient-view/feedback",
    "POST /cds-services/{service_id}",
    "POST /cds-services/{service_id}/feedback",
]
CASES = [(label, GenerationMode.POSITIVE) for label in OPERATIONS] + [
    (label, GenerationMode.NEGATIVE) for label in OPERATIONS[1:]
]


def _operations(app: Flask) -> dict[str, Any]:
    """The operations of the app's own /openapi.json, by label."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    found = (result.ok() for result in schema.get_all_operations())
    return {operation.label: operation for operation in found}


def _fuzz(operation: Any, mode: GenerationMode, examples: int, **call: Any) -> None:
    strategy = operation.as_strategy(generation_mode=mode)
    if "{service_id}" in operation.label:
        # Negating "an id discovery does not list" gives a listed one: its own operation.
        strategy = strategy.filter(lambda case: case.path_parameters["service_id"] not in LISTED)

    # Driven through hypothesis directly: schemathesis' lazy pytest loader breaks on pytest 9.
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        headers = call["headers"](case) if "headers" in call else None
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_openapi_document_lists_the_fuzzed_operations(fuzz_app: Flask) -> None:
    assert set(OPERATIONS) <= set(_operations(fuzz_app))


@pytest.mark.parametrize(("label", "mode"), CASES, ids=lambda v: str(getattr(v, "value", v)))
def test_schemathesis_without_auth(fuzz_app: Flask, label: str, mode: GenerationMode) -> None:
    """Every operation, fuzzed past authentication: no 5xx, responses as documented."""
    _fuzz(_operations(fuzz_app)[label], mode, 30)


@pytest.mark.parametrize("label", OPERATIONS)
def test_schemathesis_with_real_signed_jwts(secure_fuzz_app: Flask, label: str) -> None:
    """The same with auth on: a fresh ES384 JWT for the exact URL of each call."""

    def headers(case: Any) -> dict[str, str]:
        token = ISSUER.sign(f"https://cds.test{case.formatted_path}", jti=str(uuid.uuid4()))
        return {"Authorization": f"Bearer {token}"}

    _fuzz(_operations(secure_fuzz_app)[label], GenerationMode.POSITIVE, 10, headers=headers)
