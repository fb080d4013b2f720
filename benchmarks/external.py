"""The other issues' benchmarks, run from the same runner (they stay where their owners keep them).

mapping: benchmarks/bench_mapping.py, imported and called.
fetch: benchmarks/bench_fetch.py, run as its own process (it starts a FHIR server).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import Options, Section, Target

ROOT = Path(__file__).resolve().parents[1]


def _missing(title: str, module: str) -> Section:
    section = Section(title, [])
    section.notes.append(f"{module} is not in this checkout; skipped")
    return section


def mapping(opts: Options) -> Section:
    """bench_mapping.run as its owner measures it: CPU time, best of `repeat`, cold and warm."""
    title = "Mapping benchmark: 10,000 Observations + 200 MedicationRequests"
    try:
        bench = importlib.import_module("benchmarks.bench_mapping")
    except ImportError:
        return _missing(title, "benchmarks/bench_mapping.py")
    columns = ["relevant", "MB", "json.loads ms", "mapping cold ms", "cold / floor"]
    columns += ["mapping warm ms", "warm / floor"]
    section = Section(title, columns)
    for fraction in (0.1, 1.0):
        result: dict[str, Any] = bench.run(10_000, 200, fraction, 2 if opts.quick else 5)
        section.data[f"relevant_{fraction}"] = result
        floor = result["json_loads_s"]
        section.rows.append(
            [
                f"{fraction:.0%}",
                f"{result['bytes'] / 1e6:.1f}",
                f"{floor * 1000:.0f}",
                f"{result['mapping_s'] * 1000:.0f}",
                f"{result['ratio']:.2f}x",
                f"{result.get('warm_s', float('nan')) * 1000:.0f}",
                f"{result.get('warm_ratio', float('nan')):.2f}x",
            ]
        )
    section.notes.append(
        "CPU time, best of repeated calls; cold forgets the mapping memos first, warm maps the"
        " same data again"
    )
    return section


_FETCH_LINES = {
    "slowest_ms": r"slowest single query \(median of \d+\): (\d+) ms",
    "sum_ms": r"sum of single queries \(sequential\): (\d+) ms",
    "median_ms": r"hook, \d+ runs: median (\d+) ms",
    "p95_ms": r"hook, \d+ runs: median \d+ ms, p95 (\d+) ms",
    "ratio": r"median / slowest single query: ([\d.]+)x",
}


def fetch(opts: Options) -> Section:
    """bench_fetch.py in its own process; its printed figures are parsed into the report."""
    title = "Fetch path: no prefetch, every key fetched, FHIR server at 100 ms a request"
    script = ROOT / "benchmarks" / "bench_fetch.py"
    if not script.exists():
        return _missing(title, "benchmarks/bench_fetch.py")
    runs = "5" if opts.quick else "30"
    done = subprocess.run(
        [sys.executable, str(script), "--runs", runs, "--latency-ms", "100"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    section = Section(title, ["slowest query", "sum of queries", "hook p50", "hook p95", "ratio"])
    figures = {}
    for key, pattern in _FETCH_LINES.items():
        match = re.search(pattern, done.stdout)
        if match:
            figures[key] = float(match.group(1))
    section.data = {"figures": figures, "stdout": done.stdout, "returncode": done.returncode}
    if len(figures) < len(_FETCH_LINES):
        section.notes.append(f"bench_fetch.py output not understood: {done.stdout[-300:]!r}")
        section.notes.append(f"stderr: {done.stderr[-300:]!r}")
        section.targets.append(Target("fetch path within 1.5x the slowest query", None, "-"))
        return section
    section.rows.append(
        [
            f"{figures['slowest_ms']:.0f} ms",
            f"{figures['sum_ms']:.0f} ms",
            f"{figures['median_ms']:.0f} ms",
            f"{figures['p95_ms']:.0f} ms",
            f"{figures['ratio']:.2f}x",
        ]
    )
    section.targets.append(
        Target(
            "fetch path (no prefetch, 100 ms FHIR latency) within 1.5x the slowest query (p50)",
            figures["ratio"] <= 1.5,
            f"{figures['ratio']:.2f}x (p50 {figures['median_ms']:.0f} ms,"
            f" slowest query {figures['slowest_ms']:.0f} ms)",
        )
    )
    return section


def run(opts: Options, name: str) -> Section:
    return mapping(opts) if name == "mapping" else fetch(opts)
