"""schemathesis against a real server's /openapi.json, a fresh JWT per call.

Every operation of the document (discovery; each service's call and feedback; unknown service
ids), positive and negative cases, every check: no server errors, documented statuses, content
types and response schemas, data the document calls valid accepted (positive_data_acceptance)
and data it calls invalid refused (negative_data_rejection). Any mismatch fails.

One rule cannot be JSON Schema: a prefetched Patient must be the patient of context.patientId.
The document says so (description and `x-cds-equals` on prefetch.patient.id); positive cases
are mapped to honour it, as a client reading the document would. Negative cases are not: the
rule is not what makes them invalid, and the service refuses them either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from tests.adversarial.support import Served, request, serve

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.positive_data_acceptance,
    checks.negative_data_rejection,
]
# How invalid input may be refused: 400; 404/405 for a path that is no operation; 412 by the
# document's required-data rule (a fhirServer, or the required prefetch keys); 413 by its
# maxItems/maxProperties; 415 for a body that is not JSON. Narrower than schemathesis' default:
# every call carries a valid JWT, so 401 (or 403, refusing the fhirServer only after the body
# was accepted) would mean invalid input got past validation.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [400, 404, 405, 412, 413, 415]}}}
)
SERVICES = ["myopathy-patient-view", "myopathy-order-select", "myopathy-order-sign"]
CALLS = [f"POST /cds-services/{service}" for service in SERVICES]
FEEDBACK = [f"{call}/feedback" for call in CALLS]
OPERATIONS = [
    "GET /cds-services",
    *CALLS,
    *FEEDBACK,
    "POST /cds-services/{service_id}",
    "POST /cds-services/{service_id}/feedback",
]
EXAMPLES = int(os.environ.get("CDS_TEST_SCHEMATHESIS_EXAMPLES", "50"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("schemathesis")) as running:
        yield running


@pytest.fixture(scope="module")
def operations(served: Served) -> dict[str, Any]:
    schema = schemathesis.openapi.from_url(served.url("/openapi.json"), config=CONFIG)
    return {op.label: op for op in (result.ok() for result in schema.get_all_operations())}


def same_patient(case: Any) -> Any:
    """Apply the document's `x-cds-equals`: a prefetched Patient's id is context.patientId."""
    body = case.body
    prefetch = body.get("prefetch") if isinstance(body, dict) else None
    patient = prefetch.get("patient") if isinstance(prefetch, dict) else None
    if (
        isinstance(patient, dict)
        and patient.get("resourceType") == "Patient"
        and isinstance(patient.get("id"), str)
    ):
        patient["id"] = body["context"]["patientId"]
    return case


def invalid_input(case: Any) -> bool:
    """A negative case that negates the input, not only the Authorization header.

    The security scheme makes the bearer token a header schemathesis negates; the call sends
    a fresh valid JWT anyway (and tests/test_security_* cover bad tokens), so such a case
    would only re-send valid input.
    """
    return any(
        info.mode.is_negative
        for location, info in case.meta.components.items()
        if location is not ParameterLocation.HEADER
    )


def test_the_document_has_a_call_and_a_feedback_path_per_discovered_service(
    served: Served, operations: dict[str, Any]
) -> None:
    status, _, body = request(served.url("/cds-services"), headers=served.auth("/cds-services"))
    assert status == 200, body
    assert [service["id"] for service in body["services"]] == SERVICES
    assert sorted(operations) == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_schemathesis_with_a_fresh_jwt_per_call(
    served: Served, operations: dict[str, Any], label: str, mode: GenerationMode
) -> None:
    if label == "GET /cds-services" and mode is GenerationMode.NEGATIVE:
        pytest.skip("discovery takes no input: no negative cases")
    strategy = operations[label].as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE and label in CALLS:
        strategy = strategy.map(same_patient)
    if mode is GenerationMode.NEGATIVE:
        strategy = strategy.filter(invalid_input)
    if mode is GenerationMode.NEGATIVE and "{service_id}" in label:
        # Negating "not a listed id" gives a listed id: that service's operation, fuzzed above.
        strategy = strategy.filter(lambda case: case.path_parameters["service_id"] not in SERVICES)

    # Discovery and unknown ids take little input: half the examples keep the run near a minute.
    examples = EXAMPLES if label in CALLS or label in FEEDBACK else max(1, EXAMPLES // 2)

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        # aud is the URL the server sees: the path percent-decoded (werkzeug's request.path).
        headers = served.auth(unquote(case.formatted_path))
        case.call_and_validate(base_url=served.base, headers=headers, checks=CHECKS)

    run()
