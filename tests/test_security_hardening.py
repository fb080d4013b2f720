"""Hostile input, security headers, rate limits and log hygiene."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest
from flask.testing import FlaskClient

from cds_service.errors import ConfigError
from fhir_mappings import lazy as lazy_module
from fhir_mappings.lazy import SEARCHES, SMALLEST_TYPED_ENTRY, lazy
from tests.conftest import LazyDecodes, make_app
from tests.security_support import bearer
from tests.test_security_http import BASE, DISCOVERY, EC, PV, RSA, pv_body, secure_app

OS = "/cds-services/myopathy-order-select"


# --- Security headers -------------------------------------------------------------------------


def _header_cases(client: FlaskClient) -> dict[str, Any]:
    return {
        "discovery 200": client.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY)),
        "call 401": client.post(PV, json=pv_body()),
        "health 200": client.get("/healthz"),
        "openapi 200": client.get("/openapi.json"),
        "preflight 204": client.options(PV),
    }


@pytest.mark.parametrize(
    "case", ["discovery 200", "call 401", "health 200", "openapi 200", "preflight 204"]
)
def test_security_headers_on_every_response(tmp_path: Path, case: str) -> None:
    response = _header_cases(secure_app(tmp_path).test_client())[case]
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_html_pages_get_a_console_csp_without_inline_script(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.get("/console-page-for-test")
    def page() -> str:
        return "<!doctype html><title>console</title>"

    headers = app.test_client().get("/console-page-for-test").headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


def test_no_hsts_for_a_plain_http_local_base(tmp_path: Path) -> None:
    client = make_app(tmp_path, PUBLIC_BASE_URL="http://127.0.0.1:8080").test_client()
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


# --- Bounded prefetch and draftOrders ---------------------------------------------------------


def _draft_orders(count: int) -> dict[str, Any]:
    entry = [
        {"resource": {"resourceType": "MedicationRequest", "id": f"m{n}", "status": "draft"}}
        for n in range(count)
    ]
    return {"resourceType": "Bundle", "entry": entry}


def _os_body(count: int) -> dict[str, Any]:
    body = pv_body()
    body["hook"] = "order-select"
    body["context"] |= {"draftOrders": _draft_orders(count), "selections": ["MedicationRequest/m0"]}
    return body


def test_too_many_draft_orders_get_413(client: FlaskClient) -> None:
    assert client.post(OS, json=_os_body(3)).status_code == 200
    response = client.post(OS, json=_os_body(501))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_too_many_prefetch_keys_get_413(client: FlaskClient) -> None:
    body = pv_body()
    body["prefetch"] |= {f"extra{n}": None for n in range(70)}
    response = client.post(PV, json=body)
    assert response.status_code == 413
    assert "prefetch" in response.get_json()["error"]["message"]


def test_oversized_prefetch_bundle_gets_413(tmp_path: Path) -> None:
    client = make_app(tmp_path, MAX_BUNDLE_ENTRIES=10).test_client()
    body = pv_body()
    body["prefetch"]["conditions"]["entry"] = [{"resource": {"resourceType": "Condition"}}] * 11
    response = client.post(PV, json=body)
    assert response.status_code == 413
    assert "'conditions'" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("entry", "limit", "exceeded"),
    [
        (b"[]", 0, False),
        (b"[1,2,3]", 3, False),  # 2n + 1 bytes: the shortest list of n items
        (b"[1,2,3,4]", 3, True),
        (b"[ 1 , 2 , 3 ]", 3, False),
        (b"[1,2,3,4]", 4, False),
        (b"[1,2,3,4,5,6,7,8,9]", 4, True),
        (b'{"a": [1, 2, 3, 4, 5, 6, 7, 8]}', 2, False),  # not a list: nothing to count
    ],
)
def test_bundle_entries_are_counted_exactly_at_the_bound(
    entry: bytes, limit: int, exceeded: bool
) -> None:
    bundle = lazy(msgspec.Raw(b'{"resourceType": "Bundle", "entry": ' + entry + b"}"))
    assert bundle.more_entries_than(limit) is exceeded


def test_no_search_entry_is_shorter_than_the_bound_assumes() -> None:
    # A one-pass search of n entries holds at most its bytes / SMALLEST_TYPED_ENTRY of them:
    # each entry names its required resourceType, and the shortest name sets the bound.
    for shape in SEARCHES:
        fields = {f.name: f for f in msgspec.structs.fields(shape)}
        assert fields["resourceType"].required
        (name,) = get_args(fields["resourceType"].type)
        shortest = b'{"resource":{"resourceType":"%s"}},' % name.encode()
        assert len(shortest) >= SMALLEST_TYPED_ENTRY


_OBSERVATION = {"resourceType": "Observation", "status": "final", "code": {"text": "CK"}}
_ORDER = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/p1"},
    "medicationCodeableConcept": {"text": "prednisone"},
}


def _search(*resources: dict[str, Any]) -> Any:
    entries = [{"resource": r} for r in resources]
    return lazy(msgspec.Raw(msgspec.json.encode({"resourceType": "Bundle", "entry": entries})))


@pytest.mark.parametrize(("resource", "attempts"), [(_OBSERVATION, 1), (_ORDER, 2)])
def test_a_search_over_the_short_bound_is_counted_by_the_decode_the_mapping_reuses(
    lazy_decodes: LazyDecodes, resource: dict[str, Any], attempts: int
) -> None:
    bundle = _search(resource, resource, resource)
    typed, scans = lazy_decodes.typed, lazy_decodes.scans
    assert bundle.more_entries_than(20) is False  # 2n + 1 bytes could hold 21: not enough
    assert not scans  # no second pass over the entries to count them
    assert len(typed) == attempts  # the searches in order, up to the one that fits
    found = bundle.observations() or lazy_module.typed_entries(bundle, SEARCHES[1])
    assert found is not None and len(found) == 3
    assert len(typed) == attempts  # handed over: the mapping does not decode them again


def test_a_bundle_no_search_fits_is_counted_and_not_tried_again(
    lazy_decodes: LazyDecodes,
) -> None:
    bundle = _search(_OBSERVATION, _ORDER, _OBSERVATION, _ORDER)
    typed, scans = lazy_decodes.typed, lazy_decodes.scans
    assert bundle.more_entries_than(20) is False
    assert len(typed) == len(SEARCHES) and len(scans) == 1
    assert all(lazy_module.typed_entries(bundle, shape) is None for shape in SEARCHES)
    assert len(typed) == len(SEARCHES)


@pytest.mark.parametrize(("orders", "refused"), [(3, False), (4, True)])
def test_draft_orders_over_the_bound_get_413(tmp_path: Path, orders: int, refused: bool) -> None:
    client = make_app(tmp_path, AUTH="disabled", MAX_DRAFT_ORDERS=3).test_client()
    body = {
        "hook": "order-select",
        "hookInstance": "d3b1e0a4-0000-4000-8000-000000000001",
        "context": {
            "userId": "Practitioner/1",
            "patientId": "p1",
            "selections": [],
            "draftOrders": {"resourceType": "Bundle", "entry": [{}] * orders},
        },
    }
    response = client.post("/cds-services/myopathy-order-select", json=body)
    assert (response.status_code == 413) is refused, response.get_data(as_text=True)
    if refused:
        assert "draftOrders has more than 3" in response.get_json()["error"]["message"]


def test_oversized_body_and_deep_json_are_refused(tmp_path: Path) -> None:
    client = make_app(tmp_path, MAX_REQUEST_BYTES=4096).test_client()
    assert client.post(PV, json={"pad": "x" * 5000}).status_code == 413
    deep: Any = "leaf"
    for _ in range(100):
        deep = [deep]
    assert client.post(PV, json={"deep": deep}).status_code == 400


# --- Rate limits per issuer -------------------------------------------------------------------


def test_rate_limit_is_per_issuer_and_answers_429_in_the_error_shape(tmp_path: Path) -> None:
    client = secure_app(tmp_path, RATE_LIMIT="3 per minute").test_client()
    for _ in range(3):
        ok = client.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY))
        assert ok.status_code == 200
    limited = client.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY))
    assert limited.status_code == 429
    error = limited.get_json()["error"]
    assert (error["status"], error["code"]) == (429, "rate_limited")
    assert 0 < int(limited.headers["Retry-After"]) <= 61
    assert limited.headers["X-Content-Type-Options"] == "nosniff"
    other_issuer = client.get(DISCOVERY, headers=RSA.authorization(BASE + DISCOVERY))
    assert other_issuer.status_code == 200


def test_counting_a_request_against_the_rate_limit_starts_no_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # limits' memory storage started a timer thread on nearly every request (a thread start
    # costs more CPU than the rest of the limiter): counters now expire as they are read.
    client = secure_app(tmp_path).test_client()
    for _ in range(3):  # warm-up: the app's own threads exist by now
        client.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY))
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(type(thread).__name__)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(20):
        time.sleep(0.012)  # longer than limits' 10 ms timer, which then starts again
        ok = client.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY))
        assert ok.status_code == 200
    assert started == []


def test_unparsable_rate_limit_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CDS_RATE_LIMIT"):
        make_app(tmp_path, RATE_LIMIT="lots")


def test_probes_are_not_rate_limited(tmp_path: Path) -> None:
    client = secure_app(tmp_path, RATE_LIMIT="2 per minute").test_client()
    assert {client.get("/healthz").status_code for _ in range(5)} == {200}


def test_default_rate_limit_leaves_room_for_a_busy_hospital(tmp_path: Path) -> None:
    client = secure_app(tmp_path).test_client()
    assert client.application.config["RATE_LIMIT"] == "6000 per minute"
    codes = {
        client.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY)).status_code
        for _ in range(50)
    }
    assert codes == {200}


def test_unreachable_redis_fails_closed_for_auth_and_open_for_rate_limits(tmp_path: Path) -> None:
    dead = "redis://127.0.0.1:1/0"
    secured = secure_app(tmp_path, REDIS_URL=dead).test_client()
    response = secured.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY))
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "service_unavailable"
    open_client = make_app(tmp_path, REDIS_URL=dead).test_client()
    assert open_client.get(DISCOVERY).status_code == 200


# --- Log hygiene ------------------------------------------------------------------------------

PATIENT = "PATIENT-ZX81-SECRET"


def test_logs_hold_no_patient_id_token_or_prefetch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = secure_app(tmp_path).test_client()
    good = EC.sign(BASE + PV)
    wrong_aud = EC.sign(f"{BASE}/cds-services/{PATIENT}")
    body = pv_body(PATIENT)
    body["prefetch"]["patient"]["name"] = [{"family": "Zyxwvut-Prefetch"}]
    bad_body = {**body, "hookInstance": f"not-a-uuid-{PATIENT}"}
    with caplog.at_level(logging.DEBUG):
        assert (
            client.post(PV, json=body, headers={"Authorization": bearer(good)}).status_code == 200
        )
        replay = client.post(PV, json=body, headers={"Authorization": bearer(good)})
        assert replay.status_code == 401
        aud = client.post(PV, json=body, headers={"Authorization": bearer(wrong_aud)})
        assert aud.status_code == 401
        invalid = client.post(PV, json=bad_body, headers=EC.authorization(BASE + PV))
        assert invalid.status_code == 400
        garbage = client.post(PV, json=body, headers={"Authorization": f"Bearer {PATIENT}"})
        assert garbage.status_code == 401
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "authentication refused" in logged
    for secret in (PATIENT, good, good.rsplit(".", 1)[-1], wrong_aud, "Zyxwvut-Prefetch"):
        assert secret not in logged
