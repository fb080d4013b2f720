"""Rollout modes: silent cards audited and reported, never returned; off: not run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from cds_service import create_app
from cds_service.fhir.scenarios import build_request, load_scenario
from cds_service.guideline.facts import RuleContext
from cds_service.guideline.intents import CardIntent
from cds_service.persistence.commands import format_table

SCENARIO = load_scenario(Path(__file__).resolve().parents[2] / "fixtures" / "cau-1-fires")


def rollout_app(settings: dict[str, Any], tmp_path: Path, modes: dict[str, str]) -> Flask:
    from conftest import migrate_url

    if settings["DATABASE_URL"]:
        migrate_url(settings["DATABASE_URL"], settings["DATA_DIR"])
    policy = tmp_path / "site-policy.yaml"
    policy.write_text(json.dumps({"rollout": modes}))
    app = create_app({"AUTH": "disabled", **settings, "SITE_POLICY_FILE": str(policy)})
    app.config["TESTING"] = True
    return app


@pytest.fixture
def silent_app(settings: dict[str, Any], tmp_path: Path) -> Iterator[Flask]:
    app = rollout_app(settings, tmp_path, {"CAU-1": "silent"})
    yield app
    app.extensions["cds_store"].close()


def call(app: Flask, patient_id: str = "fx-patient") -> list[dict[str, Any]]:
    body = build_request(SCENARIO, app.extensions["cds_registry"])
    body = json.loads(json.dumps(body).replace('"fx-patient"', json.dumps(patient_id)))
    body["context"]["patientId"] = patient_id
    response = app.test_client().post(f"/cds-services/{SCENARIO.service_id}", json=body)
    assert response.status_code == 200
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


def rec_ids(cards: list[dict[str, Any]]) -> set[str]:
    from cds_service.model.events import card_recommendation_id

    return {card_recommendation_id(card) or "" for card in cards}


def test_a_silent_recommendation_is_never_returned_but_is_counted(silent_app: Flask) -> None:
    expected = {card["recommendationId"] for card in SCENARIO.expected or []}
    assert expected == {"CAU-1", "RELIEF-1"}  # the scenario fires both when all are active
    for patient in ("fx-patient", "fx-patient", "fx-patient-2"):
        assert rec_ids(call(silent_app, patient)) == {"RELIEF-1"}
    store = silent_app.extensions["cds_store"]
    assert store.flush()
    with store.engine.connect() as conn:
        answered = conn.execute(text("SELECT card_count FROM audit_hook_call")).scalars()
        assert list(answered) == [
            1,
            1,
            1,
        ]  # the calls answered one card each: silent ones are not "answered"
    report = silent_app.test_client().get("/cds-services/_reports/overrides?period=month")
    rows = {row["recommendation_id"]: row for row in report.get_json()["rows"]}
    silent, active = rows["CAU-1"], rows["RELIEF-1"]
    assert (silent["shown"], silent["would_have_fired"]) == (0, 3)
    assert (silent["patients"], silent["patients_would_have_fired"]) == (0, 2)
    assert (active["shown"], active["would_have_fired"], active["patients"]) == (3, 0, 2)
    table = format_table(report.get_json()).splitlines()
    [line] = [row for row in table if " CAU-1 " in row]
    # period, recommendation, fired, patients, would-fire, patients, accepted, overridden
    assert line.split()[1:8] == ["CAU-1", "0", "0", "3", "2", "0", "0"]


def test_feedback_on_a_silent_card_uuid_is_unknown(silent_app: Flask) -> None:
    """A silent card's uuid never left the service: feedback naming it matches no card."""
    call(silent_app)
    store = silent_app.extensions["cds_store"]
    assert store.flush()
    with store.engine.connect() as conn:
        silent_uuid = conn.execute(
            text("SELECT card_uuid FROM audit_card WHERE mode = 'silent'")
        ).scalar_one()
    item = {
        "card": silent_uuid,
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-25T10:00:00Z",
    }
    posted = silent_app.test_client().post(
        f"/cds-services/{SCENARIO.service_id}/feedback", json={"feedback": [item]}
    )
    assert posted.get_json() == {"stored": 1, "unknownCards": [silent_uuid]}


@pytest.mark.parametrize(("mode", "runs"), [("off", 0), ("silent", 1), ("active", 1)])
def test_off_is_not_evaluated(
    settings: dict[str, Any], tmp_path: Path, mode: str, runs: int
) -> None:
    app = rollout_app(settings, tmp_path, {"CAU-1": mode})
    try:
        engine = app.extensions["cds_engine"]
        real = engine.rules["CAU-1"]
        calls: list[str] = []

        def spy(ctx: RuleContext) -> list[CardIntent]:
            calls.append(ctx.hook)
            return real(ctx)

        engine.rules["CAU-1"] = spy
        cards = call(app)
        assert len(calls) == runs
        assert ("CAU-1" in rec_ids(cards)) == (mode == "active")
        store = app.extensions["cds_store"]
        assert store.flush()
        with store.engine.connect() as conn:
            audited = conn.execute(
                text("SELECT mode FROM audit_card WHERE recommendation_id = 'CAU-1'")
            ).scalars()
            assert list(audited) == ([] if mode == "off" else [mode])
    finally:
        app.extensions["cds_store"].close()
