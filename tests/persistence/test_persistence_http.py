"""Feedback, audit and the report through the HTTP app, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from persistence_helpers import audit_entry, feedback, table_count
from sqlalchemy import text

from cds_service.persistence import Store

PV = "myopathy-patient-view"
PATIENT_ID = "pat-7f3c-secret-id"


def hook_request() -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": PATIENT_ID},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": PATIENT_ID},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []},
        },
    }


def store_of(app: Flask) -> Store:
    store: Store = app.extensions["cds_store"]
    return store


def post_feedback(client: FlaskClient, *items: dict[str, Any], service: str = PV) -> Any:
    return client.post(f"/cds-services/{service}/feedback", json={"feedback": list(items)})


def test_hook_call_is_audited_with_hashed_patient(app: Flask, client: FlaskClient) -> None:
    body = hook_request()
    response = client.post(f"/cds-services/{PV}", json=body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    store = store_of(app)
    assert store.flush()
    with store.engine.connect() as conn:
        call = conn.execute(
            text("SELECT hook_instance, service_id, hook, patient_hash, card_count FROM audit_hook_call")
        ).one()
        issued = set(conn.execute(text("SELECT card_uuid FROM audit_card")).scalars())
    assert call.hook_instance == body["hookInstance"]
    assert (call.service_id, call.hook, call.card_count) == (PV, "patient-view", len(cards))
    assert call.patient_hash == store.hasher(PATIENT_ID)
    assert issued == {card["uuid"] for card in cards if "uuid" in card}


def test_patient_id_is_nowhere_in_the_database(app: Flask, client: FlaskClient) -> None:
    for _ in range(3):
        assert client.post(f"/cds-services/{PV}", json=hook_request()).status_code == 200
    store = store_of(app)
    assert store.flush()
    with store.engine.connect() as conn:
        dump = [
            str(row)
            for table in ("audit_hook_call", "audit_card", "feedback", "service_secret")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        ]
    assert len(dump) >= 3
    assert not [row for row in dump if PATIENT_ID in row]


def test_feedback_is_stored_and_retry_is_idempotent(app: Flask, client: FlaskClient) -> None:
    card = str(uuid.uuid4())
    store_of(app).submit_audit(audit_entry((card, "IS-2")))
    assert store_of(app).flush()
    first = post_feedback(client, feedback(card, "accepted"))
    retry = post_feedback(client, feedback(card, "accepted"))
    assert (first.status_code, first.get_json()) == (200, {"stored": 1})
    assert (retry.status_code, retry.get_json()) == (200, {"stored": 0, "duplicates": 1})
    assert table_count(store_of(app).engine, "feedback") == 1


def test_feedback_for_a_card_never_issued_is_kept_and_marked(app: Flask, client: FlaskClient) -> None:
    stranger = str(uuid.uuid4())
    response = post_feedback(client, feedback(stranger, reason=None))
    assert response.status_code == 200
    assert response.get_json()["unknownCards"] == [stranger]
    assert table_count(store_of(app).engine, "feedback", "card_known = false") == 1


def test_feedback_accepts_real_client_override_reason_without_display(
    app: Flask, client: FlaskClient
) -> None:
    item = feedback(str(uuid.uuid4()), comment="patient declined")
    assert "display" not in item["overrideReason"]["reason"]
    assert post_feedback(client, item).status_code == 200
    with store_of(app).engine.connect() as conn:
        row = conn.execute(text("SELECT reason_code, reason_display, user_comment FROM feedback")).one()
    assert tuple(row) == ("not-applicable", None, "patient declined")


def test_invalid_feedback_is_a_400_and_stores_nothing(app: Flask, client: FlaskClient) -> None:
    bad = {"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": "2026-11-20T10:00:00Z"}
    response = post_feedback(client, bad)  # accepted without acceptedSuggestions
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"
    assert table_count(store_of(app).engine, "feedback") == 0


def test_report_endpoint_lives_under_cds_services(app: Flask, client: FlaskClient) -> None:
    card = str(uuid.uuid4())
    store_of(app).submit_audit(audit_entry((card, "MON-1")))
    assert store_of(app).flush()
    assert post_feedback(client, feedback(card, reason="declined")).status_code == 200
    response = client.get("/cds-services/_reports/overrides?period=day")
    assert response.status_code == 200
    rows = response.get_json()["rows"]
    assert [(r["recommendation_id"], r["shown"], r["overridden"], r["override_rate"]) for r in rows] == [
        ("MON-1", 1, 1, 1.0)
    ]
    assert rows[0]["top_override_reasons"][0]["code"] == "declined"
    # Discovery still lists only the real services; the report path is not a service id.
    ids = {s["id"] for s in client.get("/cds-services").get_json()["services"]}
    assert not any(i.startswith("_") for i in ids)


def test_report_endpoint_rejects_bad_query(client: FlaskClient) -> None:
    for query in ("period=year", "from=yesterday", "to=2026-02-30"):
        response = client.get(f"/cds-services/_reports/overrides?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["error"]["code"] == "invalid_request"
