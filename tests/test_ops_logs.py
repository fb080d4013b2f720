"""Logs under a real `cds-service serve`: JSON and text lines, access and hook-call
lines, INFO by default, no tokens or patient ids, start-up warnings once for all workers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from cds_service.fhir.scenarios import roll
from tests.ops_support import ROOT, clean_env, serving

RECORDED = ROOT / "docs" / "examples" / "recorded-request.json"
SERVICE = "myopathy-patient-view"
TOKEN = "eyJhbGciOiJub25lIn0.c2VjcmV0LXRva2VuLXZhbHVl.c2ln"
HOOK_INSTANCE = "6f1c53c1-6a49-4a0e-9c3a-3e1f8f0f7a11"


def hook_request(patient_id: str) -> dict[str, Any]:
    body = roll(orjson.loads(RECORDED.read_bytes()), datetime.now(UTC))
    text = orjson.dumps(body).decode().replace("fx-patient", patient_id)
    request: dict[str, Any] = json.loads(text)
    request["hookInstance"] = HOOK_INSTANCE
    return request


def json_lines(log: str) -> list[dict[str, Any]]:
    entries = []
    for line in log.splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


@pytest.fixture(scope="module")
def json_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two workers, JSON lines, authentication off: calls with a token and a patient id."""
    tmp_path = tmp_path_factory.mktemp("logs-json")
    env = clean_env(tmp_path, CDS_LOG_FORMAT="json", CDS_AUTH="disabled")
    with serving(tmp_path, env, "--workers", "2", "--threads", "2") as served:
        patient = "pt-LOGSECRET-4711"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{served.url}/cds-services/{SERVICE}"
        answer = requests.post(url, json=hook_request(patient), headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        missing = requests.get(f"{served.url}/Patient/{patient}?patient={patient}", timeout=5)
        assert missing.status_code == 404
        requests.get(f"{served.url}/cds-services?patient={patient}", headers=headers, timeout=5)
        served.wait_for_log('"path":"/cds-services","status":200')
        return served.wait_for_log(" ready", count=2, timeout=30)


def test_hook_call_line_names_service_hook_instance_and_duration(json_run: str) -> None:
    (line,) = [e for e in json_lines(json_run) if e["logger"] == "cds_service.hook"]
    assert line["level"] == "INFO"
    assert line["service"] == SERVICE and line["hook"] == "patient-view"
    assert line["hookInstance"] == HOOK_INSTANCE
    assert isinstance(line["durationMs"], float) and line["durationMs"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


def test_one_access_line_per_request_without_query_or_ids(json_run: str) -> None:
    access = [e for e in json_lines(json_run) if e["logger"] == "cds_service.access"]
    seen = {(e["method"], e["path"], e["status"]) for e in access}
    assert ("POST", f"/cds-services/{SERVICE}", 200) in seen
    assert ("GET", "(no route)", 404) in seen
    assert ("GET", "/cds-services", 200) in seen
    assert all(isinstance(e["durationMs"], float) for e in access)


def test_no_token_and_no_patient_id_anywhere_in_the_log(json_run: str) -> None:
    assert "LOGSECRET" not in json_run
    assert TOKEN not in json_run and "c2VjcmV0" not in json_run


def test_every_line_is_json_with_time_level_logger_message(json_run: str) -> None:
    lines = [line for line in json_run.splitlines() if line.strip()]
    entries = json_lines(json_run)
    # Alembic's migration of a new SQLite file runs in a child process before the service.
    assert len(entries) >= len(lines) - 1
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)


def test_start_up_warnings_are_logged_once_for_all_workers(json_run: str) -> None:
    messages = [e["message"] for e in json_lines(json_run)]
    assert sum("AUTHENTICATION DISABLED" in m for m in messages) == 1
    assert sum(m.startswith("knowledge ") for m in messages) == 1
    assert sum(re.fullmatch(r"worker \d+ ready", m) is not None for m in messages) == 2


def test_text_lines_show_time_level_logger_and_message(tmp_path: Path) -> None:
    env = clean_env(tmp_path, CDS_AUTH="disabled")
    with serving(tmp_path, env, "--workers", "1") as served:
        requests.get(f"{served.url}/cds-services", timeout=5)
        log = served.wait_for_log("cds_service.access GET /cds-services 200")
    line = next(x for x in log.splitlines() if "cds_service.access GET /cds-services" in x)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT[\d:.]+Z INFO cds_service\.access GET /cds-services 200 [\d.]+ms", line
    )
    # gunicorn's own lines go through the same format.
    assert re.search(r"Z INFO gunicorn\.error Booting worker with pid: \d+", log)
