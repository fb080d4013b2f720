"""GET /metrics: the values after known calls, in-process and across serve workers."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from cds_service.fhir.fixture_server import create_fhir_app, running_server
from cds_service.fhir.store import FixtureStore
from cds_service.security.reasons import REASON_CLASSES, reason_class
from tests.conftest import make_app
from tests.fhir_helpers import PATIENT_ID, TOKEN, patient_resources
from tests.ops_support import clean_env, serving, value
from tests.test_ops_logs import SERVICE, hook_request


def scrape(client: FlaskClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def feedback_item(card: str) -> dict[str, Any]:
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "card": card,
        "outcome": "overridden",
        "outcomeTimestamp": at,
        "overrideReason": {"reason": {"code": "patient-declined", "system": "urn:x"}},
    }


def test_hook_calls_cards_feedback_audit_and_memos_are_counted(app: Flask) -> None:
    client = app.test_client()
    before = scrape(client)
    answers = [
        client.post(f"/cds-services/{SERVICE}", json=hook_request(f"pt-{i}")) for i in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    cards = answers[0].get_json()["cards"]
    assert cards, "the recorded request fires a card"
    card = cards[0]
    rec_id = card["extension"]["org.cds-myopathy.provenance"]["recommendationId"]
    stored = client.post(
        f"/cds-services/{SERVICE}/feedback", json={"feedback": [feedback_item(card["uuid"])]}
    )
    assert stored.status_code == 200, stored.get_data(as_text=True)
    refused = client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": "no"})
    assert refused.status_code == 400
    app.extensions["cds_store"].flush()
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("cds_hook_duration_seconds_count", service=SERVICE) == 2
    assert grew("cds_hook_duration_seconds_sum", service=SERVICE) > 0
    assert grew("cds_cards_total", recommendation=rec_id, indicator=card["indicator"]) == 2
    assert grew("cds_feedback_items_total", outcome="stored") == 1
    assert grew("cds_feedback_requests_total", outcome="stored") == 1
    assert grew("cds_feedback_requests_total", outcome="refused") == 1
    assert grew("cds_audit_records_written_total") == 2
    assert value(after, "cds_audit_queue_depth") == 0
    assert grew("cds_prefetch_keys_total", host="none", outcome="prefetched") > 0
    memo = "card_check"
    lookups = sum(grew("cds_memo_lookups_total", memo=memo, result=r) for r in ("hit", "miss"))
    assert lookups > 0
    route = "/cds-services/<service_id>"
    assert grew("cds_http_requests_total", route=route, status="200") == 2


def test_fetch_outcomes_are_counted_per_fhir_host(tmp_path: Path) -> None:
    app = make_app(
        tmp_path, FHIR_SERVER_ALLOWLIST="http://127.0.0.1", FHIR_ALLOW_LOOPBACK_HTTP=True
    )
    client = app.test_client()
    fhir = create_fhir_app(FixtureStore(patient_resources()), None, required_token=TOKEN)
    with running_server(fhir) as url:
        host = url.removeprefix("http://")
        before = scrape(client)
        body = {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/example", "patientId": PATIENT_ID},
            "fhirServer": url,
            "fhirAuthorization": {
                "access_token": TOKEN,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds-service",
            },
        }
        assert client.post(f"/cds-services/{SERVICE}", json=body).status_code == 200
        keys = len(app.extensions["cds_registry"].get(SERVICE).prefetch)
        after = scrape(client)
    fetched = value(after, "cds_prefetch_keys_total", host=host, outcome="fetched")
    assert fetched - value(before, "cds_prefetch_keys_total", host=host, outcome="fetched") == keys


@pytest.mark.parametrize("server", ["http://[8Fb]", "https://[1:2:3]:8443/fhir"])
def test_a_refused_fhir_server_that_urlsplit_rejects_is_403_counted_as_other(
    tmp_path: Path, server: str
) -> None:
    client = make_app(tmp_path).test_client()
    before = scrape(client)
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": PATIENT_ID},
        "fhirServer": server,
    }
    response = client.post(f"/cds-services/{SERVICE}", json=body)
    assert response.status_code == 403, response.get_data(as_text=True)
    refused = value(scrape(client), "cds_prefetch_keys_total", host="other", outcome="refused")
    assert refused > value(before, "cds_prefetch_keys_total", host="other", outcome="refused")


def test_auth_refusals_are_counted_by_reason_class(tmp_path: Path) -> None:
    client = make_app(tmp_path, AUTH="required").test_client()
    before = scrape(client)
    assert client.get("/cds-services").status_code == 401
    headers = {"Authorization": "Bearer not-a-jwt"}
    assert client.get("/cds-services", headers=headers).status_code == 401
    after = scrape(client)
    for reason in ("missing", "malformed"):
        grown = value(after, "cds_auth_refusals_total", reason=reason) - value(
            before, "cds_auth_refusals_total", reason=reason
        )
        assert grown == 1, reason


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("missing bearer token", "missing"),
        ("untrusted issuer 'https://x'", "untrusted_issuer"),
        ("ExpiredSignatureError: Signature has expired", "expired"),
        ("InvalidAudienceError: Audience doesn't match", "audience"),
        ("jti replayed for issuer 'https://x'", "replayed"),
        ("tenant must be a string", "claims"),
        ("tenant 'a' not allowed for issuer 'https://x'", "untrusted_issuer"),
        ("unknown kid 'k' for issuer 'https://x'", "unknown_key"),
        ('MissingRequiredClaimError: Token is missing the "jti" claim', "claims"),
        ("something new", "other"),
    ],
)
def test_reason_classes_are_few_and_hold_no_values(reason: str, expected: str) -> None:
    assert reason_class(reason) == expected
    assert expected in REASON_CLASSES


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    client = make_app(tmp_path, METRICS=False).test_client()
    assert client.get("/metrics").status_code == 404


def test_metrics_need_no_token_when_authentication_is_on(tmp_path: Path) -> None:
    client = make_app(tmp_path, AUTH="required").test_client()
    assert client.get("/metrics").status_code == 200


def test_serve_workers_add_up_in_one_exposition(tmp_path: Path) -> None:
    """Two workers (multiprocess mode): every call counts, whichever worker took it."""
    env = clean_env(tmp_path, CDS_AUTH="disabled")
    with serving(tmp_path, env, "--workers", "2", "--threads", "2") as served:
        url = f"{served.url}/cds-services/{SERVICE}"
        calls = 12
        with requests.Session() as session:
            for i in range(calls):
                # A new connection each time, so that both workers take calls.
                answer = session.post(
                    url, json=hook_request(f"pt-{i}"), headers={"Connection": "close"}, timeout=30
                )
                assert answer.status_code == 200
        text = requests.get(f"{served.url}/metrics", timeout=10).text
    assert value(text, "cds_hook_duration_seconds_count", service=SERVICE) == calls
    route = "/cds-services/<service_id>"
    assert value(text, "cds_http_requests_total", route=route, status="200") == calls


def test_audit_records_a_killed_process_never_wrote_are_counted_at_start(tmp_path: Path) -> None:
    """A ledger left by a process that is gone (7 taken, 3 settled): 4 records lost."""
    ledger = tmp_path / "data" / "audit-ledger"
    ledger.mkdir(parents=True)
    (ledger / "999999999-1-1.ledger").write_bytes(struct.pack("<QQ", 7, 3))
    client = make_app(tmp_path).test_client()
    client.get("/healthz")
    assert value(scrape(client), "cds_audit_records_lost_total") == 4
