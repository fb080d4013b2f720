"""Benchmark: a hook whose prefetch must all be fetched, FHIR server at 100 ms/request.

Run: .venv/bin/python benchmarks/bench_fetch.py [--runs 30] [--latency-ms 100]
The hook should take about one round trip (aim <= 1.5x the slowest single query), not the sum.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cds_service import create_app  # noqa: E402
from cds_service.fhir.fixture_server import Faults, create_fhir_app, running_server  # noqa: E402
from cds_service.fhir.scenarios import iter_scenarios  # noqa: E402
from cds_service.fhir.store import FixtureStore  # noqa: E402
from cds_service.fhir.templates import fill_template  # noqa: E402

SERVICE = "myopathy-patient-view"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--latency-ms", type=int, default=100)
    args = parser.parse_args()

    scenario = next(iter_scenarios(ROOT / "fixtures"))
    store = FixtureStore.from_bundle(scenario.patient_bundle)
    fhir = create_fhir_app(store, Faults(latency_ms=args.latency_ms))
    with tempfile.TemporaryDirectory() as data, running_server(fhir) as base:
        app = create_app(
            {
                "AUTH": "disabled",
                "DATA_DIR": data,
                "FHIR_SERVER_ALLOWLIST": "http://127.0.0.1",
                "FHIR_ALLOW_LOOPBACK_HTTP": True,
            }
        )
        service = app.extensions["cds_registry"].get(SERVICE)
        context = {"userId": "Practitioner/bench", "patientId": scenario.patient_id}
        queries = [fill_template(t, context) for t in service.prefetch.values()]

        # Each query alone, one after another, on a warm connection.
        session = requests.Session()
        single: dict[str, list[float]] = {q: [] for q in queries}
        for _ in range(5):
            for query in queries:
                started = time.perf_counter()
                session.get(f"{base}/{query}", timeout=5).raise_for_status()
                single[query].append(time.perf_counter() - started)
        slowest = max(statistics.median(v) for v in single.values())

        client = app.test_client()
        durations: list[float] = []
        for i in range(args.runs + 2):
            body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "context": context}
            body["fhirServer"] = base
            started = time.perf_counter()
            response = client.post(f"/cds-services/{SERVICE}", json=body)
            elapsed = time.perf_counter() - started
            payload = response.get_json()
            if response.status_code != 200 or "extension" in payload:
                print(f"run {i}: HTTP {response.status_code} {payload}", file=sys.stderr)
                return 1
            if i >= 2:  # the first calls warm the connection pool and the rules
                durations.append(elapsed)

    median, p95 = statistics.median(durations), percentile(durations, 0.95)
    print(f"{len(queries)} prefetch queries fetched per hook, FHIR latency {args.latency_ms} ms")
    print(f"slowest single query (median of 5): {slowest * 1000:.0f} ms")
    total = sum(statistics.median(v) for v in single.values())
    print(f"sum of single queries (sequential): {total * 1000:.0f} ms")
    print(f"hook, {args.runs} runs: median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    print(f"median / slowest single query: {median / slowest:.2f}x (target <= 1.5x)")
    return 0 if median <= 1.5 * slowest else 1


if __name__ == "__main__":
    raise SystemExit(main())
