"""schemathesis against a real server's /openapi.json, a fresh JWT per call.

No server errors, and schema and behaviour agree: data the document calls invalid is refused
(negative_data_rejection); feedback and discovery the document calls valid are accepted
(positive_data_acceptance). A hook call the document calls valid may still be refused for
what one schema for every hook cannot say (the context a given hook needs, the hook's name):
then the 400 must name exactly those members.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from tests.adversarial.support import Served, serve

COMMON = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
HOOK_OPERATION = "POST /cds-services/{service_id}"
OPERATIONS = ["GET /cds-services", HOOK_OPERATION, "POST /cds-services/{service_id}/feedback"]
# Refusals of schema-valid hook calls that the shared document cannot express.
PER_HOOK = ("hook", "context", "prefetch.patient.id")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("schemathesis")) as running:
        yield running


def _operations(served: Served) -> dict[str, Any]:
    schema = schemathesis.openapi.from_url(served.url("/openapi.json"))
    return {op.label: op for op in (result.ok() for result in schema.get_all_operations())}


def _check_positive_hook(response: Any) -> None:
    if response.status_code in (200, 403, 412):
        return
    assert response.status_code == 400, response.text
    details = response.json()["error"].get("details") or {}
    assert details, response.text
    assert all(key.startswith(PER_HOOK) for key in details), response.text


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_schemathesis_with_a_fresh_jwt_per_call(
    served: Served, label: str, mode: GenerationMode
) -> None:
    operation = _operations(served)[label]
    wanted = list(COMMON)
    if mode is GenerationMode.POSITIVE and label != HOOK_OPERATION:
        wanted.append(checks.positive_data_acceptance)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        headers = served.auth(case.formatted_path)
        response = case.call_and_validate(base_url=served.base, headers=headers, checks=wanted)
        if mode is GenerationMode.POSITIVE and label == HOOK_OPERATION:
            _check_positive_hook(response)

    if label == "GET /cds-services" and mode is GenerationMode.NEGATIVE:
        pytest.skip("discovery takes no input: no negative cases")
    run()
