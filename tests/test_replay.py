"""`cds-service replay`: fixture scenarios and recorded requests, in-process or over HTTP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.fhir.fixture_server import running_server
from cds_service.fhir.scenarios import iter_scenarios
from tests.conftest import FIXTURES, make_app
from tests.fhir_helpers import PATIENT_ID, as_bundle, patient_resources

SCENARIO_DIRS = [str(s.path) for s in iter_scenarios(FIXTURES)]
# Pinned-prefetch scenarios (failed client fetches) are not expected to match when fetched.
FETCHABLE_DIRS = [str(s.path) for s in iter_scenarios(FIXTURES) if not s.fixed_prefetch]
WITH_CARDS = next(s for s in iter_scenarios(FIXTURES) if s.expected)


def test_check_passes_on_every_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--check", *SCENARIO_DIRS]) == 0
    out = capsys.readouterr().out
    assert out.count("check: OK") == len(SCENARIO_DIRS)


def test_check_passes_when_the_service_fetches_everything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", "--check", "--fetch", *FETCHABLE_DIRS]) == 0
    assert capsys.readouterr().out.count("check: OK") == len(FETCHABLE_DIRS)


def test_cards_are_printed_readably(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(WITH_CARDS.path)]) == 0
    out = capsys.readouterr().out
    card = WITH_CARDS.expected[0]  # type: ignore[index]
    assert f"[{card['indicator'].upper()}] {card['summary']}" in out
    for suggestion in card.get("suggestions", []):
        assert f"-> {suggestion['label']}" in out
    assert "\033[" not in out  # no colour codes when stdout is not a terminal


def test_check_fails_on_a_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / WITH_CARDS.name
    shutil.copytree(WITH_CARDS.path, scenario)
    expected = json.loads((scenario / "expected.json").read_text())
    expected[0]["summary"] = "a summary the service never says"
    (scenario / "expected.json").write_text(json.dumps(expected))
    assert main(["replay", "--check", str(scenario)]) == 1
    out = capsys.readouterr().out
    assert "CHECK FAILED: missing card" in out
    assert "a summary the service never says" in out


def test_check_fails_without_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "no-golden"
    shutil.copytree(WITH_CARDS.path, scenario)
    (scenario / "expected.json").unlink()
    assert main(["replay", "--check", str(scenario)]) == 1
    assert "no expected.json" in capsys.readouterr().out


def test_recorded_request_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": PATIENT_ID},
        "prefetch": {"patient": patient_resources()[0], "conditions": None},
    }
    path = tmp_path / "recorded.json"
    path.write_text(json.dumps(request))
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "recorded -> myopathy-patient-view: HTTP 200" in out
    assert "unavailable input labs" in out


def test_patient_fixture_plus_hook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "patient.json").write_text(json.dumps(as_bundle(patient_resources())))
    assert main(["replay", "--hook", "patient-view", str(tmp_path)]) == 0
    assert "-> myopathy-patient-view: HTTP 200" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("not json", "not JSON"), ('{"a": 1}', "no hook")],
)
def test_bad_paths_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "request-file.json"
    if content is not None:
        path.write_text(content)
    assert main(["replay", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_replay_to_a_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(make_app(tmp_path)) as url:
        assert main(["replay", "--check", "--url", url, *SCENARIO_DIRS]) == 0
    assert capsys.readouterr().out.count("check: OK") == len(SCENARIO_DIRS)


def test_unreachable_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--url", "http://127.0.0.1:9", SCENARIO_DIRS[0]]) == 2
    assert "cannot reach" in capsys.readouterr().err
