"""The prefetch policy end to end: service, gateway and fixture FHIR server on loopback."""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service.fhir.fixture_server import Faults, create_fhir_app, running_server
from cds_service.fhir.search import InMemoryFhir
from cds_service.fhir.store import FixtureStore
from cds_service.fhir.templates import fill_template
from cds_service.hooks.calls import parse_hook_request
from cds_service.hooks.routes import UNAVAILABLE_KEY
from cds_service.model.types import ResolvedPrefetch
from tests.conftest import make_app
from tests.fhir_helpers import PATIENT_ID, TOKEN, OffLoopbackGuard, patient_resources

SERVICE = "myopathy-patient-view"
REQUIRED = {"patient", "conditions"}
OBSERVATION_KEYS = {"weight", "labs", "vitals"}


@pytest.fixture(autouse=True)
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[OffLoopbackGuard]:
    """No test here may reach beyond loopback, even if the allow-list were broken."""
    installed = OffLoopbackGuard().install(monkeypatch)
    yield installed
    assert installed.attempts == []


@pytest.fixture
def fhir_app(tmp_path: Path) -> Flask:
    return make_app(
        tmp_path,
        FHIR_SERVER_ALLOWLIST="http://127.0.0.1",
        FHIR_ALLOW_LOOPBACK_HTTP=True,
        FHIR_BUDGET_SECONDS=1.0,
    )


@contextmanager
def fhir_server(faults: Faults | None = None) -> Iterator[tuple[str, deque[str]]]:
    """The fixture server (token required); yields its URL and the log of data requests."""
    app = create_fhir_app(FixtureStore(patient_resources()), faults, required_token=TOKEN)
    with running_server(app) as url:
        yield url, app.extensions["fixture_requests"]


def full_prefetch(app: Flask) -> dict[str, Any]:
    service = app.extensions["cds_registry"].get(SERVICE)
    store = InMemoryFhir(patient_resources())
    context = {"patientId": PATIENT_ID}
    return {k: store.query(fill_template(t, context)) for k, t in service.prefetch.items()}


def hook_body(
    fhir_server: str | None = None, prefetch: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": PATIENT_ID},
    }
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
        }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def resolve(app: Flask, body: dict[str, Any]) -> ResolvedPrefetch:
    service = app.extensions["cds_registry"].get(SERVICE)
    resolver = app.extensions["cds_prefetch"]
    resolved: ResolvedPrefetch = resolver.resolve(parse_hook_request(body, service), service)
    return resolved


def call(app: Flask, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.test_client().post(f"/cds-services/{SERVICE}", json=body)
    return response.status_code, response.get_json()


def unavailable(payload: dict[str, Any]) -> dict[str, str]:
    return dict((payload.get("extension") or {}).get(UNAVAILABLE_KEY) or {})


def test_complete_prefetch_needs_no_server(fhir_app: Flask) -> None:
    with fhir_server() as (url, seen):
        status, payload = call(fhir_app, hook_body(url, full_prefetch(fhir_app)))
    assert status == 200
    assert unavailable(payload) == {}
    assert list(seen) == []


def test_absent_keys_are_fetched_and_match_full_prefetch(fhir_app: Flask) -> None:
    with fhir_server() as (url, seen):
        resolved = resolve(fhir_app, hook_body(url))
    assert resolved.unavailable == {}
    expected = full_prefetch(fhir_app)
    assert resolved.data["patient"] == expected["patient"]
    for key in set(expected) - {"patient"}:
        got = [e["resource"]["id"] for e in resolved.data[key].get("entry", [])]
        assert got == [e["resource"]["id"] for e in expected[key].get("entry", [])], key
    assert len(seen) == len(expected)


def test_partial_prefetch_fetches_only_the_missing_keys(fhir_app: Flask) -> None:
    sent = {k: v for k, v in full_prefetch(fhir_app).items() if k not in OBSERVATION_KEYS}
    with fhir_server() as (url, seen):
        resolved = resolve(fhir_app, hook_body(url, sent))
    assert resolved.unavailable == {}
    assert set(resolved.data) == set(full_prefetch(fhir_app))
    assert list(seen) == ["GET /Observation"] * 3


def test_null_means_no_data_and_is_not_fetched(fhir_app: Flask) -> None:
    sent = full_prefetch(fhir_app) | {"allergies": None, "service_requests": None}
    with fhir_server() as (url, seen):
        resolved = resolve(fhir_app, hook_body(url, sent))
        status, payload = call(fhir_app, hook_body(url, sent))
    assert resolved.data["allergies"] is None
    assert resolved.unavailable == {}
    assert (status, unavailable(payload), list(seen)) == (200, {}, [])


def test_operation_outcome_is_refetched_when_a_server_is_available(fhir_app: Flask) -> None:
    failed = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    sent = full_prefetch(fhir_app) | {"labs": failed}
    with fhir_server() as (url, seen):
        resolved = resolve(fhir_app, hook_body(url, sent))
    assert resolved.data["labs"]["resourceType"] == "Bundle"
    assert len(resolved.data["labs"]["entry"]) == 5
    assert list(seen) == ["GET /Observation"]


def test_operation_outcome_without_server(fhir_app: Flask) -> None:
    failed = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    status, payload = call(fhir_app, hook_body(None, full_prefetch(fhir_app) | {"labs": failed}))
    assert status == 200
    assert "OperationOutcome" in unavailable(payload)["labs"]
    status, payload = call(fhir_app, hook_body(None, full_prefetch(fhir_app) | {"patient": failed}))
    assert status == 412
    assert payload["error"]["details"]["unavailable"].keys() == {"patient"}


def test_paginated_prefetch_bundle_is_followed(fhir_app: Flask) -> None:
    with fhir_server() as (url, seen):
        first = InMemoryFhir(patient_resources()).query(
            f"Observation?patient={PATIENT_ID}&code=2157-6"
        )
        assert first is not None
        first_page = {**first, "entry": first["entry"][:2]}
        next_url = f"{url}/Observation?patient={PATIENT_ID}&code=2157-6&_count=2&_offset=2"
        first_page["link"] = [{"relation": "next", "url": next_url}]
        sent = full_prefetch(fhir_app) | {"labs": first_page}
        resolved = resolve(fhir_app, hook_body(url, sent))
    assert [e["resource"]["id"] for e in resolved.data["labs"]["entry"]] == [
        f"ck-{PATIENT_ID}-{i}" for i in range(5)
    ]
    assert list(seen) == ["GET /Observation"] * 2


def test_paginated_prefetch_with_offsite_next_link_is_unavailable(fhir_app: Flask) -> None:
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": "http://169.254.169.254/latest/meta-data/"}],
    }
    with fhir_server() as (url, seen):
        status, payload = call(fhir_app, hook_body(url, full_prefetch(fhir_app) | {"labs": page}))
    assert status == 200
    assert "outside the allowed server" in unavailable(payload)["labs"]
    assert list(seen) == []


def test_paginated_prefetch_without_server_is_unavailable_not_silently_partial(
    fhir_app: Flask,
) -> None:
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": "https://ehr.example.org/Observation?page=2"}],
    }
    status, payload = call(fhir_app, hook_body(None, full_prefetch(fhir_app) | {"labs": page}))
    assert status == 200
    assert "more pages" in unavailable(payload)["labs"]


@pytest.mark.parametrize("link", [5, True, 2.5])
def test_a_bundle_whose_link_is_not_a_list_is_used_as_sent_not_a_500(
    fhir_app: Flask, link: Any
) -> None:
    page = {"resourceType": "Bundle", "type": "searchset", "link": link}
    status, payload = call(fhir_app, hook_body(None, full_prefetch(fhir_app) | {"labs": page}))
    assert status == 200, payload
    assert "labs" not in unavailable(payload)


def test_absent_required_data_without_server_is_412_naming_the_keys(fhir_app: Flask) -> None:
    status, payload = call(fhir_app, hook_body(None, {}))
    assert status == 412
    assert payload["error"]["code"] == "prefetch_unavailable"
    assert set(payload["error"]["details"]["unavailable"]) == REQUIRED


def test_absent_optional_data_without_server_answers_and_says_so(fhir_app: Flask) -> None:
    sent = {k: v for k, v in full_prefetch(fhir_app).items() if k in REQUIRED}
    status, payload = call(fhir_app, hook_body(None, sent))
    assert status == 200
    assert set(unavailable(payload)) == set(full_prefetch(fhir_app)) - REQUIRED


@pytest.mark.parametrize(
    ("fault", "types", "expect_status"),
    [
        ("timeout", {"Observation"}, 200),
        ("timeout", {"Patient"}, 412),
        ("5xx", {"Observation"}, 200),
        ("5xx", {"Condition"}, 412),
        ("429", {"MedicationRequest"}, 200),
        ("malformed", {"Observation"}, 200),
        ("malformed", {"Patient"}, 412),
    ],
)
def test_failing_server_gives_412_or_a_degraded_answer_within_the_budget(
    tmp_path: Path, fault: str, types: set[str], expect_status: int
) -> None:
    budget = 1.0  # wide enough for a loaded CI machine; injected sleeps are 3 s
    app = make_app(
        tmp_path,
        FHIR_SERVER_ALLOWLIST="http://127.0.0.1",
        FHIR_ALLOW_LOOPBACK_HTTP=True,
        FHIR_BUDGET_SECONDS=budget,
    )
    faults = Faults(mode=fault, only_types=frozenset(types), timeout_sleep=3.0, retry_after=2)
    with fhir_server(faults) as (url, _):
        started = time.monotonic()
        status, payload = call(app, hook_body(url))
        elapsed = time.monotonic() - started
    assert status == expect_status
    assert elapsed < budget + 0.5  # the budget plus the service's own work on a busy machine
    if status == 200:
        keys = {"Observation": OBSERVATION_KEYS, "MedicationRequest": {"medications"}}
        assert set(unavailable(payload)) == keys[next(iter(types))]
    else:
        assert payload["error"]["code"] == "prefetch_unavailable"
        assert set(payload["error"]["details"]["unavailable"]) & REQUIRED


@pytest.mark.parametrize(
    "server",
    [
        "http://169.254.169.254/fhir",
        "https://169.254.169.254/latest/meta-data",
        "http://127.0.0.1.evil.com/fhir",
        "http://evil.com@127.0.0.1/fhir",
        "http://127.0.0.1@evil.com/fhir",
        "https://ehr.example.org/fhir",
        "http://10.0.0.7/fhir",
        "http://127.0.0.2:9/fhir",
    ],
)
def test_untrusted_fhir_server_is_refused_with_403_and_never_contacted(
    fhir_app: Flask, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    gateway = fhir_app.extensions["cds_fhir_gateway"]
    real_send = gateway._send
    monkeypatch.setattr(gateway, "_send", lambda *a: sent.append(a[1]) or real_send(*a))
    status, payload = call(fhir_app, hook_body(server))
    assert sent == []
    assert status == 403
    assert payload["error"]["code"] == "fhir_server_not_allowed"
    assert set(payload["error"]["details"]["keys"]) == set(full_prefetch(fhir_app))


def test_untrusted_fhir_server_is_fine_when_nothing_must_be_fetched(fhir_app: Flask) -> None:
    status, _ = call(fhir_app, hook_body("http://169.254.169.254/fhir", full_prefetch(fhir_app)))
    assert status == 200


def test_plain_http_fhir_server_off_loopback_is_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path, FHIR_SERVER_ALLOWLIST="http://ehr.example.org")
    status, payload = call(app, hook_body("http://ehr.example.org/fhir"))
    assert status == 403
    assert "plain http" in payload["error"]["details"]["reason"]


def test_access_token_and_patient_id_never_logged(
    fhir_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = Faults(mode="5xx", rate=0.5, only_types=frozenset({"Observation"}))
    with fhir_server(faults) as (url, seen):
        status, _ = call(fhir_app, hook_body(url))
        call(fhir_app, hook_body("http://169.254.169.254/fhir"))
    assert status == 200
    assert seen, "the service fetched from the fixture server"
    assert caplog.records
    assert TOKEN not in caplog.text
    assert PATIENT_ID not in caplog.text
