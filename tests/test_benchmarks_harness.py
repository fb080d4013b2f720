"""The benchmark harness measures what it says; no timing is asserted here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from benchmarks import synth
from benchmarks.bench_instructions import STAGES, child
from benchmarks.floor import PATH as FLOOR_PATH
from benchmarks.served_instructions import worker_total
from benchmarks.stats import percentile, summarize
from tests.conftest import make_bench_app as make_app


@pytest.mark.parametrize("n", [10, 100, 1000])
def test_synthetic_patient_has_the_requested_number_of_resources(n: int) -> None:
    body = synth.request_body("patient-view", n)
    assert synth.resource_count(body) == n
    labs = body["prefetch"]["labs"]["entry"]
    assert all(e["resource"]["referenceRange"] for e in labs)


@pytest.mark.parametrize(
    ("hook", "service"),
    [("patient-view", "myopathy-patient-view"), ("order-select", "myopathy-order-select")],
)
def test_synthetic_request_makes_the_rules_run(tmp_path: Path, hook: str, service: str) -> None:
    client = make_app(tmp_path).test_client()
    body = orjson.dumps(synth.request_body(hook, synth.TYPICAL))
    response = client.post(f"/cds-services/{service}", data=body, content_type="application/json")
    assert response.status_code == 200
    summaries = " ".join(card["summary"] for card in response.get_json()["cards"])
    assert "diazepam" in summaries  # CAU-2: a benzodiazepine with a myopathy diagnosis


def test_floor_endpoint_is_off_unless_enabled(tmp_path: Path) -> None:
    body = orjson.dumps(synth.request_body("patient-view", 10))
    off = make_app(tmp_path).test_client()
    assert off.post(FLOOR_PATH, data=body, content_type="application/json").status_code == 404
    on = make_app(tmp_path, BENCH_FLOOR_ENDPOINT=True).test_client()
    response = on.post(FLOOR_PATH, data=body, content_type="application/json")
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_floor_endpoint_refuses_malformed_json_with_the_error_shape(tmp_path: Path) -> None:
    client = make_app(tmp_path, BENCH_FLOOR_ENDPOINT=True).test_client()
    response = client.post(FLOOR_PATH, data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


def test_floor_endpoint_sits_behind_authentication(tmp_path: Path) -> None:
    client = make_app(tmp_path, AUTH="required", BENCH_FLOOR_ENDPOINT=True).test_client()
    response = client.post(FLOOR_PATH, data=b"{}", content_type="application/json")
    assert response.status_code == 401


def test_percentiles_interpolate() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    summary = summarize([0.001 * i for i in range(1, 101)])
    assert summary.n == 100
    assert summary.p50 == pytest.approx(50.5)
    assert summary.max == pytest.approx(100.0)


def test_a_new_patient_body_is_unlike_every_other() -> None:
    """Cold benchmarks post new patients: no resource's bytes repeat, the counts do."""
    epoch = datetime(2026, 12, 1, tzinfo=UTC)
    bodies = [synth.new_patient_body("patient-view", 100, serial, epoch) for serial in (1, 2)]
    parsed = [orjson.loads(b) for b in bodies]
    assert [synth.resource_count(p) for p in parsed] == [100, 100]
    assert parsed[0]["context"]["patientId"] != parsed[1]["context"]["patientId"]
    resources = [
        [orjson.dumps(e["resource"]) for v in p["prefetch"].values() for e in v.get("entry", [])]
        for p in parsed
    ]
    assert not set(resources[0]) & set(resources[1])


@pytest.mark.parametrize("stage", STAGES)
def test_each_counted_stage_runs_without_valgrind(tmp_path: Path, stage: str) -> None:
    # The instruction benchmark is run on demand only: this keeps its stages from rotting.
    child(stage, 10, 1, tmp_path)


def test_the_served_count_reads_the_worker_not_the_master(tmp_path: Path) -> None:
    # gunicorn's master and its worker each leave a callgrind file; only the worker serves.
    (tmp_path / "cg.100").write_text("events: Ir\ntotals: 5000\n")
    (tmp_path / "cg.101").write_text("events: Ir\ntotals: 7000\n")
    assert worker_total(tmp_path, master=100) == 7000
    (tmp_path / "cg.102").write_text("events: Ir\ntotals: 9000\n")
    with pytest.raises(RuntimeError, match="one worker"):
        worker_total(tmp_path, master=100)
