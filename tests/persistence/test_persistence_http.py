"""Feedback, audit and the report through the HTTP app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
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
            text(
                "SELECT hook_instance, service_id, hook, patient_hash, card_count"
                " FROM audit_hook_call"
            )
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


def test_feedback_for_a_card_never_issued_is_kept_and_marked(
    app: Flask, client: FlaskClient
) -> None:
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
        row = conn.execute(
            text("SELECT reason_code, reason_display, user_comment FROM feedback")
        ).one()
    assert tuple(row) == ("not-applicable", None, "patient declined")


def test_invalid_feedback_is_a_400_and_stores_nothing(app: Flask, client: FlaskClient) -> None:
    bad = {
        "card": str(uuid.uuid4()),
        "outcome": "accepted",
        "outcomeTimestamp": "2026-11-20T10:00:00Z",
    }
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
    assert [
        (r["recommendation_id"], r["shown"], r["overridden"], r["override_rate"]) for r in rows
    ] == [("MON-1", 1, 1, 1.0)]
    assert rows[0]["top_override_reasons"][0]["code"] == "declined"
    # Discovery still lists only the real services; the report path is not a service id.
    ids = {s["id"] for s in client.get("/cds-services").get_json()["services"]}
    assert not any(i.startswith("_") for i in ids)


def test_report_endpoint_rejects_bad_query(client: FlaskClient) -> None:
    for query in ("period=year", "from=yesterday", "to=2026-02-30"):
        response = client.get(f"/cds-services/_reports/overrides?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["error"]["code"] == "invalid_request"


def test_report_endpoint_requires_a_valid_jwt(settings: dict[str, Any], tmp_path: Path) -> None:
    from conftest import migrate_url

    from cds_service import create_app
    from cds_service.security.local_issuer import LocalIssuer

    if settings["DATABASE_URL"]:
        migrate_url(settings["DATABASE_URL"], settings["DATA_DIR"])
    base, issuer = "https://cds.example.org", LocalIssuer(iss="https://ehr.example.org")
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps({"issuers": [issuer.issuer_entry()]}))
    app = create_app(
        {
            **settings,
            "AUTH": "required",
            "TRUSTED_ISSUERS_FILE": str(issuers),
            "PUBLIC_BASE_URL": base,
        }
    )
    try:
        client, path = app.test_client(), "/cds-services/_reports/overrides"
        refused = client.get(path)
        assert refused.status_code == 401
        assert "rows" not in refused.get_data(as_text=True)
        allowed = client.get(path, headers=issuer.authorization(base + path))
        assert allowed.status_code == 200
        assert allowed.get_json()["rows"] == []
    finally:
        store_of(app).close()


def test_governance_flow_from_real_cards_to_the_report(app: Flask, client: FlaskClient) -> None:
    """A guideline card is shown, the clinician overrides it, the report counts it."""
    from cds_service.fhir.scenarios import build_request, load_scenario

    scenario = load_scenario(Path(__file__).resolve().parents[2] / "fixtures" / "cau-2-fires")
    expected_ids = {card["recommendationId"] for card in scenario.expected or []}
    assert expected_ids == {"CAU-2"}
    body = build_request(scenario, app.extensions["cds_registry"])
    response = client.post(f"/cds-services/{scenario.service_id}", json=body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards
    store = store_of(app)
    assert store.flush()
    with store.engine.connect() as conn:
        audited = set(conn.execute(text("SELECT recommendation_id FROM audit_card")).scalars())
    assert audited == expected_ids
    override = {
        "card": cards[0]["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-25T10:00:00-05:00",
        # As real clients send it: code and system, no display, no comment.
        "overrideReason": {"reason": {"system": "http://example.org/reasons", "code": "benefit"}},
    }
    posted = post_feedback(client, override, service=scenario.service_id)
    assert posted.get_json() == {"stored": 1}
    report = client.get(f"/cds-services/_reports/overrides?service={scenario.service_id}")
    [row] = report.get_json()["rows"]
    assert (row["recommendation_id"], row["shown"], row["overridden"]) == ("CAU-2", 1, 1)
    assert row["override_rate"] == 1.0
    assert row["top_override_reasons"] == [
        {"system": "http://example.org/reasons", "code": "benefit", "display": None, "count": 1}
    ]


def test_odd_but_valid_feedback_content_is_stored_not_503(app: Flask, client: FlaskClient) -> None:
    card = str(uuid.uuid4())
    item = feedback(card, reason="r" * 2000, comment="line\u0000break")
    item["overrideReason"]["reason"]["system"] = "urn:" + "s" * 3000
    response = post_feedback(client, item)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert post_feedback(client, item).get_json()["duplicates"] == 1
    with store_of(app).engine.connect() as conn:
        code, comment = conn.execute(text("SELECT reason_code, user_comment FROM feedback")).one()
    assert (len(code), comment) == (2000, "linebreak")


def test_timestamp_outside_what_utc_can_hold_is_a_400(client: FlaskClient) -> None:
    item = feedback(str(uuid.uuid4()), at="0001-01-01T00:30:00+01:00")
    response = post_feedback(client, item)
    assert response.status_code == 400
    assert "outcomeTimestamp" in response.get_json()["error"]["details"]
