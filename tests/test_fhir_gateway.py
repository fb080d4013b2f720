"""The FHIR gateway against the fixture FHIR server over real HTTP on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask, Response, redirect

from cds_service.fhir.allowlist import ServerPolicy
from cds_service.fhir.errors import (
    FhirError,
    FhirForbiddenServer,
    FhirHttpError,
    FhirMalformed,
    FhirTimeout,
    FhirTooLarge,
)
from cds_service.fhir.fixture_server import Faults, create_fhir_app, running_server
from cds_service.fhir.gateway import Deadline, FhirGateway, FhirTarget, GatewaySettings
from cds_service.fhir.store import FixtureStore
from tests.fhir_helpers import LOINC, PATIENT_ID, TOKEN, OffLoopbackGuard, patient_resources

LOOPBACK = ServerPolicy.from_settings("http://127.0.0.1", allow_loopback_http=True)
CK = f"Observation?patient={PATIENT_ID}&code={LOINC}|2157-6&_sort=-date"
QUERIES = {
    "patient": f"Patient/{PATIENT_ID}",
    "ck": CK,
    "weight": f"Observation?patient={PATIENT_ID}&code={LOINC}|29463-7",
    "medications": f"MedicationRequest?patient={PATIENT_ID}",
    "conditions": f"Condition?patient={PATIENT_ID}&clinical-status=active",
    "allergies": f"AllergyIntolerance?patient={PATIENT_ID}",
    "orders": f"ServiceRequest?patient={PATIENT_ID}",
}


@pytest.fixture(autouse=True)
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[OffLoopbackGuard]:
    """No test here may reach beyond loopback, even if the allow-list were broken."""
    installed = OffLoopbackGuard().install(monkeypatch)
    yield installed
    assert installed.attempts == []


def gateway(budget: float = 2.0, **settings: float) -> FhirGateway:
    return FhirGateway(GatewaySettings(budget=budget, **settings), LOOPBACK)  # type: ignore[arg-type]


@contextmanager
def served(faults: Faults | None = None, token: str | None = TOKEN) -> Iterator[FhirTarget]:
    store = FixtureStore(patient_resources())
    with running_server(create_fhir_app(store, faults, required_token=token)) as url:
        yield FhirTarget(url, TOKEN)


def ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def test_read_and_search_with_the_bearer_token() -> None:
    gw = gateway()
    with served() as target:
        results = gw.fetch_many(target, QUERIES, gw.deadline())
    assert results["patient"]["id"] == PATIENT_ID
    assert ids(results["ck"]) == [f"ck-{PATIENT_ID}-{i}" for i in (4, 3, 2, 1, 0)]
    assert ids(results["medications"]) == [f"mr-{PATIENT_ID}-1", f"mr-{PATIENT_ID}-2"]
    assert results["orders"]["resourceType"] == "Bundle"
    assert "entry" not in results["orders"]


def test_wrong_token_is_an_http_error_without_retry() -> None:
    gw = gateway()
    with served() as target:
        result = gw.fetch_many(FhirTarget(target.base, "wrong"), {"p": "Patient/x"}, gw.deadline())
    assert isinstance(result["p"], FhirHttpError)
    assert result["p"].status == 401


def test_read_of_unknown_resource_is_404() -> None:
    gw = gateway()
    with served() as target, pytest.raises(FhirHttpError) as info:
        gw.fetch(target, "Patient/nobody", gw.deadline())
    assert info.value.status == 404


def test_pages_are_followed_and_merged() -> None:
    gw = gateway()
    with served() as target:
        bundle = gw.fetch(target, CK + "&_count=2", gw.deadline())
    assert ids(bundle) == [f"ck-{PATIENT_ID}-{i}" for i in (4, 3, 2, 1, 0)]
    assert "link" not in bundle


def test_page_bound() -> None:
    gw = gateway(max_pages=2)
    with served() as target, pytest.raises(FhirTooLarge):
        gw.fetch(target, CK + "&_count=2", gw.deadline())


def test_resource_bound() -> None:
    gw = gateway(max_resources=3)
    with served() as target, pytest.raises(FhirTooLarge):
        gw.fetch(target, CK + "&_count=2", gw.deadline())


def test_response_size_bound() -> None:
    gw = gateway(max_response_bytes=500)
    with served() as target, pytest.raises(FhirTooLarge):
        gw.fetch(target, CK, gw.deadline())


def test_queries_run_concurrently_within_about_one_round_trip() -> None:
    gw = gateway()
    with served(Faults(latency_ms=150)) as target:
        gw.fetch_many(target, {"warm": "Patient/" + PATIENT_ID}, gw.deadline())
        started = time.monotonic()
        results = gw.fetch_many(target, QUERIES, gw.deadline())
        elapsed = time.monotonic() - started
    assert not [k for k, v in results.items() if isinstance(v, FhirError)]
    # Sequential would be 7 x 150 ms = 1.05 s.
    assert elapsed < 0.75


def test_slow_server_fails_within_the_budget() -> None:
    # A budget wide enough for a loaded CI machine; the server sleeps three times longer.
    gw = gateway(budget=1.0)
    faults = Faults(mode="timeout", timeout_sleep=3.0, only_types=frozenset({"Observation"}))
    with served(faults) as target:
        started = time.monotonic()
        results = gw.fetch_many(target, QUERIES, gw.deadline())
        elapsed = time.monotonic() - started
    assert isinstance(results["ck"], FhirTimeout)
    assert results["patient"]["id"] == PATIENT_ID
    assert elapsed < 1.5


def test_5xx_is_retried_then_succeeds() -> None:
    gw = gateway()
    with served(Faults(mode="5xx", rate=0.5)) as target:
        assert gw.fetch(target, f"Patient/{PATIENT_ID}", gw.deadline())["id"] == PATIENT_ID


def test_persistent_5xx_gives_up_after_bounded_retries() -> None:
    gw = gateway(max_retries=2)
    faults = Faults(mode="5xx", rate=1.0)
    with served(faults) as target, pytest.raises(FhirHttpError) as info:
        gw.fetch(target, f"Patient/{PATIENT_ID}", gw.deadline())
    assert info.value.status == 503
    assert faults._count == 3  # the first try and two retries


def test_429_retry_after_is_honoured() -> None:
    gw = gateway(budget=3.0)
    with served(Faults(mode="429", rate=0.5, retry_after=1)) as target:
        started = time.monotonic()
        patient = gw.fetch(target, f"Patient/{PATIENT_ID}", gw.deadline())
        elapsed = time.monotonic() - started
    assert patient["id"] == PATIENT_ID
    assert elapsed >= 1.0


def test_429_retry_after_beyond_the_budget_fails_at_once() -> None:
    gw = gateway(budget=0.4)
    faults = Faults(mode="429", rate=1.0, retry_after=5)
    with served(faults) as target, pytest.raises(FhirHttpError) as info:
        started = time.monotonic()
        gw.fetch(target, f"Patient/{PATIENT_ID}", gw.deadline())
    assert info.value.status == 429
    assert time.monotonic() - started < 0.4
    assert faults._count == 1


def test_malformed_json() -> None:
    gw = gateway()
    with served(Faults(mode="malformed")) as target, pytest.raises(FhirMalformed):
        gw.fetch(target, CK, gw.deadline())


def test_exhausted_deadline_sends_nothing() -> None:
    gw = gateway()
    faults = Faults()
    with served(faults) as target, pytest.raises(FhirTimeout):
        gw.fetch(target, CK, Deadline(0))


def _hostile_app() -> Flask:
    """A server whose redirects and next links point elsewhere (loopback, nothing listens)."""
    app = Flask("hostile")

    @app.get("/fhir/Patient/<pid>")
    def moved(pid: str) -> Response:
        return redirect(f"http://127.0.0.2:9/fhir/Patient/{pid}", code=302)

    @app.get("/fhir/Patient/here")
    def moved_here() -> Response:
        return redirect("/fhir/Patient/there", code=302)

    @app.get("/fhir/Patient/there")
    def there() -> Response:
        return Response('{"resourceType": "Patient", "id": "there"}', mimetype="application/json")

    @app.get("/fhir/Observation")
    def offsite_next() -> Response:
        body = (
            '{"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "next",'
            ' "url": "http://127.0.0.2:9/fhir/Observation?page=2"}]}'
        )
        return Response(body, mimetype="application/fhir+json")

    return app


def test_redirects_and_next_links_never_leave_the_server() -> None:
    gw = gateway()
    with running_server(_hostile_app()) as url:
        target = FhirTarget(url + "/fhir", TOKEN)
        assert gw.fetch(target, "Patient/here", gw.deadline())["id"] == "there"
        with pytest.raises(FhirForbiddenServer):
            gw.fetch(target, "Patient/1", gw.deadline())
        with pytest.raises(FhirForbiddenServer):
            gw.fetch(target, "Observation?patient=1", gw.deadline())


def test_absolute_queries_are_refused() -> None:
    gw = gateway()
    with pytest.raises(FhirForbiddenServer):
        gw.fetch(FhirTarget("http://127.0.0.1:1"), "http://169.254.169.254/x", gw.deadline())


def test_token_and_patient_id_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    from cds_service.fhir.prefetch import _drop_debug

    logging.getLogger("urllib3.connectionpool").addFilter(_drop_debug)
    caplog.set_level(logging.DEBUG)
    gw = gateway()
    with served(Faults(mode="5xx", rate=0.5, only_types=frozenset({"Observation"}))) as target:
        results = gw.fetch_many(target, QUERIES, gw.deadline())
        gw.fetch_many(FhirTarget(target.base, "bad-" + TOKEN), QUERIES, gw.deadline())
    assert results["patient"]["id"] == PATIENT_ID
    assert caplog.records, "the gateway logs a summary of each fetch"
    assert TOKEN not in caplog.text
    assert PATIENT_ID not in caplog.text


def test_one_session_and_pool_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import cds_service.fhir.gateway as module

    gw = gateway()
    assert gw.session is gateway().session
    assert gw.lanes is gw.lanes
    parent_session = gw.session
    monkeypatch.setattr(module.os, "getpid", lambda: -1)  # as after a gunicorn fork
    assert gw.session is not parent_session
