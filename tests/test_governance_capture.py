"""Capture for replay: hook calls saved as fixtures that `replay --check` passes."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service.cli import main
from cds_service.errors import ConfigError
from cds_service.fhir.fixture_server import create_fixture_wsgi, running_server
from cds_service.fhir.scenarios import TEXT_CHECKS, build_request, iter_scenarios, load_scenario
from cds_service.fhir.store import FixtureStore
from cds_service.fhir.timeshift import Shift, shift_dates
from tests.conftest import FIXTURES, make_app

SCENARIOS = list(iter_scenarios(FIXTURES))
TOKEN = "secret-access-token-4711"


def capture_app(tmp_path: Path) -> Flask:
    return make_app(
        tmp_path,
        CAPTURE_DIR=str(tmp_path / "captures"),
        FHIR_SERVER_ALLOWLIST="http://127.0.0.1",
        FHIR_ALLOW_LOOPBACK_HTTP=True,
    )


def captures(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "captures").iterdir() if not p.name.startswith("."))


def post(app: Flask, body: dict[str, Any], service_id: str) -> list[dict[str, Any]]:
    response = app.test_client().post(f"/cds-services/{service_id}", json=body)
    assert response.status_code == 200, response.get_json()
    if "cds_capture" in app.extensions:  # written by a background thread
        assert app.extensions["cds_capture"].flush()
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


def test_capture_is_off_by_default(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert "cds_capture" not in app.extensions
    scenario = SCENARIOS[0]
    post(app, build_request(scenario, app.extensions["cds_registry"]), scenario.service_id)
    assert not (tmp_path / "captures").exists()


def test_start_up_warns_that_captures_hold_patient_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cds_service"):
        capture_app(tmp_path)
    assert any("PATIENT DATA" in r.getMessage() for r in caplog.records)
    assert stat.S_IMODE((tmp_path / "captures").stat().st_mode) == 0o700


def test_an_unwritable_capture_dir_stops_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"^CDS_CAPTURE_DIR"):
        make_app(tmp_path, CAPTURE_DIR=str(blocker / "captures"))


def test_every_fixture_captured_replays_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = capture_app(tmp_path)
    registry = app.extensions["cds_registry"]
    for scenario in SCENARIOS:
        post(app, build_request(scenario, registry), scenario.service_id)
    saved = captures(tmp_path)
    assert len(saved) == len(SCENARIOS)
    for path in saved:
        assert {p.name for p in path.iterdir()} == {
            "request.json",
            "patient.json",
            "expected.json",
            "capture.json",
        }
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in path.iterdir())
    capsys.readouterr()
    assert main(["replay", "--check", *map(str, saved)]) == 0
    assert capsys.readouterr().out.count("check: OK") == len(SCENARIOS)

    # The golden cards are the fixtures' own: a capture of a fixture is that fixture's answer.
    # textIncludes/textExcludes are hand-written checks of a fixture, not part of the card.
    def golden(cards: list[dict[str, Any]]) -> str:
        projected = [{k: v for k, v in c.items() if k not in TEXT_CHECKS} for c in cards]
        return json.dumps(sorted(json.dumps(c, sort_keys=True) for c in projected))

    expected = sorted(golden(s.expected or []) for s in SCENARIOS)
    got = sorted(golden(json.loads((p / "expected.json").read_text())) for p in saved)
    assert got == expected


def test_fetched_data_is_captured_and_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No prefetch: the service fetches; the capture keeps what it fetched, not the token."""
    app = capture_app(tmp_path)
    registry = app.extensions["cds_registry"]
    fetchable = [s for s in SCENARIOS if not s.fixed_prefetch and s.expected][:6]
    stores = {s.name: FixtureStore.from_bundle(s.patient_bundle) for s in fetchable}
    with running_server(create_fixture_wsgi(stores)) as base:
        for scenario in fetchable:
            body = build_request(scenario, registry, prefetch=False)
            body["fhirServer"] = f"{base}/{scenario.name}"
            body["fhirAuthorization"] = {
                "access_token": TOKEN,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds-service",
            }
            assert post(app, body, scenario.service_id)
    saved = captures(tmp_path)
    assert len(saved) == len(fetchable)
    for path in saved:
        request = json.loads((path / "request.json").read_text())
        assert request["prefetch"]["patient"]["resourceType"] == "Patient"
        for file in path.iterdir():
            assert TOKEN not in file.read_text()
    capsys.readouterr()
    assert main(["replay", "--check", *map(str, saved)]) == 0
    assert capsys.readouterr().out.count("check: OK") == len(fetchable)


def test_a_capture_replays_the_same_days_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dates are kept as received and moved by the time since capture when replayed."""
    app = capture_app(tmp_path)
    registry = app.extensions["cds_registry"]
    timed = [s for s in SCENARIOS if s.name.startswith(("cau-1", "mon-1", "ref-1", "pt-1"))]
    for scenario in timed:
        post(app, build_request(scenario, registry), scenario.service_id)
    for path in captures(tmp_path):
        request = path / "request.json"
        # As if captured 45 days ago: every date, and the capture time, 45 days earlier.
        moved = shift_dates(json.loads(request.read_text()), Shift.by_days(-45))
        request.write_text(json.dumps(moved))
        loaded = load_scenario(path)
        assert "capturedAt" not in loaded.request
    capsys.readouterr()
    assert main(["replay", "--check", *map(str, captures(tmp_path))]) == 0
    assert capsys.readouterr().out.count("check: OK") == len(timed)


def test_an_input_the_client_failed_to_fetch_is_kept_as_sent(tmp_path: Path) -> None:
    """The capture keeps the OperationOutcome, so replay reports the same unavailable input."""
    app = capture_app(tmp_path)
    scenario = next(s for s in SCENARIOS if s.name == "mon-1-missing-labs")
    response = app.test_client().post(
        f"/cds-services/{scenario.service_id}",
        json=build_request(scenario, app.extensions["cds_registry"]),
    )
    unavailable = response.get_json()["extension"]["org.cds-myopathy.unavailable-inputs"]
    assert app.extensions["cds_capture"].flush()
    [case] = captures(tmp_path)
    prefetch = json.loads((case / "request.json").read_text())["prefetch"]
    meta = json.loads((case / "capture.json").read_text())
    assert meta["unavailable"] == unavailable
    for key in unavailable:
        assert prefetch[key]["resourceType"] == "OperationOutcome"
    replayed = app.test_client().post(
        f"/cds-services/{scenario.service_id}",
        json=build_request(load_scenario(case), app.extensions["cds_registry"]),
    )
    assert replayed.get_json()["extension"]["org.cds-myopathy.unavailable-inputs"] == unavailable


def test_a_full_queue_drops_and_counts_without_failing_the_call(tmp_path: Path) -> None:
    app = capture_app(tmp_path)
    writer = app.extensions["cds_capture"]
    writer.close()  # no writer thread: the queue fills up
    scenario = SCENARIOS[0]
    body = build_request(scenario, app.extensions["cds_registry"])
    for _ in range(writer._queue.maxsize + 3):
        response = app.test_client().post(f"/cds-services/{scenario.service_id}", json=body)
        assert response.status_code == 200
    assert writer.dropped == 3
