"""In-process hook latency by prefetch size, beside the floor measured in the same run.

floor = the same request body through the same Flask test client to POST /_bench/empty-cards,
which does json.loads of the body and answers an empty card list (benchmarks/floor.py).
"warm" repeats the same body, as an EHR does on every chart open; "cold" forgets the
mapping memos (fhir_mappings validation verdicts and per-resource outcomes) before each call,
as for a record the worker has never seen.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import orjson

from benchmarks import synth
from benchmarks.common import SERVICES, Options, Section, Target, bench_app
from benchmarks.floor import PATH as FLOOR_PATH
from benchmarks.stats import Budget, fmt_ms, interleaved, summarize
from fhir_mappings.state import forget_memos

JSON = "application/json"


def _budget(n: int, quick: bool, cold: bool = False) -> Budget:
    if cold:
        return Budget(1, 3, 2.0, warmup=0) if quick else Budget(3, 30, 15.0, warmup=0)
    if quick:
        return Budget(3, 30 if n <= 1000 else 3, 2.0, warmup=1)
    if n <= 200:
        return Budget(50, 400, 20.0)
    if n <= 1000:
        return Budget(30, 150, 20.0)
    return Budget(8, 30, 45.0, warmup=1)


def _check(response: Any, what: str) -> list[dict[str, Any]]:
    if response.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.get_data()[:300]!r}")
    cards: list[dict[str, Any]] = orjson.loads(response.get_data())["cards"]
    return cards


def measure(opts: Options, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """One record per (size, hook): summaries of json.loads, floor, warm and cold hook."""
    app = bench_app(opts.workdir)
    client = app.test_client()
    records: list[dict[str, Any]] = []
    for n in sizes:
        for hook, service_id in SERVICES.items():
            raw = orjson.dumps(synth.request_body(hook, n))
            url = f"/cds-services/{service_id}"

            def call(url: str = url, raw: bytes = raw) -> Any:
                return client.post(url, data=raw, content_type=JSON)

            def cold(call: Any = call) -> Any:
                forget_memos()  # a record this worker has never seen
                return call()

            def unvalidated(call: Any = call) -> Any:
                app.config["VALIDATE_RESPONSES"] = False
                try:
                    return call()
                finally:
                    app.config["VALIDATE_RESPONSES"] = True

            cards = _check(call(), f"{hook} n={n}")
            _check(client.post(FLOOR_PATH, data=raw, content_type=JSON), "floor")

            def parse(raw: bytes = raw) -> Any:
                return json.loads(raw)

            def floor(raw: bytes = raw) -> Any:
                return client.post(FLOOR_PATH, data=raw, content_type=JSON)

            ops: dict[str, Callable[[], object]] = {"json_loads": parse, "floor": floor}
            ops["hook"] = call
            if n == synth.TYPICAL:
                ops["hook_unvalidated"] = unvalidated
            samples = interleaved(ops, _budget(n, opts.quick))
            cold_samples = interleaved({"hook_cold": cold}, _budget(n, opts.quick, cold=True))
            record: dict[str, Any] = {
                "resources": synth.resource_count(orjson.loads(raw)),
                "hook": hook,
                "body_bytes": len(raw),
                "cards": [c.get("summary") for c in cards],
                "ms": {
                    name: asdict(summarize(values))
                    for name, values in {**samples, **cold_samples}.items()
                },
            }
            records.append(record)
    return records


def _ratio(record: dict[str, Any]) -> float:
    ms = record["ms"]
    return float(ms["hook"]["p50"] / ms["floor"]["p50"])


def _p(summary: dict[str, Any]) -> str:
    return f"{fmt_ms(summary['p50'])} / {fmt_ms(summary['p95'])} / {fmt_ms(summary['p99'])}"


def _cold_ratio(record: dict[str, Any]) -> float:
    return float(record["ms"]["hook_cold"]["p50"] / record["ms"]["floor"]["p50"])


def _targets(records: list[dict[str, Any]]) -> list[Target]:
    targets = []
    big = [r for r in records if r["resources"] >= 1000]
    if big:
        targets.append(
            Target(
                "hook latency at 1,000 and 10,000 resources within 3x the floor (p50, warm)",
                all(_ratio(r) <= 3.0 for r in big),
                "; ".join(f"{r['hook']} @{r['resources']}: {_ratio(r):.1f}x" for r in big),
            )
        )
        cold = {f"{r['hook']} @{r['resources']}": _cold_ratio(r) for r in big}
        targets.append(
            Target(
                "the same, cold (a record this worker has not seen: no memo helps)",
                all(v <= 3.0 for v in cold.values()),
                "; ".join(f"{name}: {v:.1f}x" for name, v in cold.items()),
            )
        )
    typical = [r for r in records if r["resources"] == synth.TYPICAL]
    if typical:
        targets.append(
            Target(
                f"typical request ({synth.TYPICAL} resources) in-process p50 < 10 ms, p99 < 50 ms",
                all(r["ms"]["hook"]["p50"] < 10 and r["ms"]["hook"]["p99"] < 50 for r in typical),
                "; ".join(
                    f"{r['hook']}: p50 {fmt_ms(r['ms']['hook']['p50'])} ms, "
                    f"p99 {fmt_ms(r['ms']['hook']['p99'])} ms"
                    for r in typical
                ),
            )
        )
    return targets


COLUMNS = [
    "resources",
    "hook",
    "body",
    "json.loads p50",
    "floor p50 / p95 / p99",
    "hook warm p50 / p95 / p99",
    "warm / floor",
    "hook cold p50 / p95 / p99",
    "samples (warm, cold)",
]


def run(opts: Options) -> Section:
    """The latency section of the report."""
    sizes = tuple(sorted(set(opts.sizes) | {synth.TYPICAL}))
    records = measure(opts, sizes)
    section = Section("In-process hook latency (ms)", COLUMNS, data={"records": records})
    for r in records:
        ms = r["ms"]
        section.rows.append(
            [
                f"{r['resources']:,}",
                r["hook"],
                f"{r['body_bytes'] / 1024:,.0f} KiB",
                fmt_ms(ms["json_loads"]["p50"]),
                _p(ms["floor"]),
                _p(ms["hook"]),
                f"{_ratio(r):.1f}x",
                _p(ms["hook_cold"]),
                f"{ms['hook']['n']}, {ms['hook_cold']['n']}",
            ]
        )
    for r in records:
        if "hook_unvalidated" in r["ms"]:
            on, off = r["ms"]["hook"], r["ms"]["hook_unvalidated"]
            section.notes.append(
                f"{r['hook']} @{r['resources']}: VALIDATE_RESPONSES on p50 {fmt_ms(on['p50'])} ms"
                f" / off {fmt_ms(off['p50'])} ms (p99 {fmt_ms(on['p99'])} / {fmt_ms(off['p99'])})"
            )
    section.notes.append(
        "cards answered: "
        + "; ".join(f"{r['hook']} @{r['resources']}: {len(r['cards'])}" for r in records)
    )
    section.targets = _targets(records)
    return section
