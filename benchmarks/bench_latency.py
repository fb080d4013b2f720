"""In-process hook latency by prefetch size, beside the floor measured in the same run.

floor = the same request body through the same Flask test client to POST /_bench/empty-cards,
which does json.loads of the body and answers an empty card list (benchmarks/floor.py).
"cold" (the headline) posts a new patient on every call (synth.NEW_PATIENT: a body unlike
every body the process has seen), each right after the floor of the same body; "warm"
repeats one body, as an EHR does when a chart is opened again. Wall time and the thread's CPU
time are both recorded: on a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson

from benchmarks import synth
from benchmarks.common import SERVICES, Options, Section, Target, bench_app
from benchmarks.floor import PATH as FLOOR_PATH
from benchmarks.stats import Budget, fmt_ms, interleaved, summarize

JSON = "application/json"
COLD_SIZES = (100, 1000, 10_000)  # the sizes of the cold target


def _budget(n: int, quick: bool) -> Budget:
    if quick:
        return Budget(3, 30 if n <= 1000 else 3, 2.0, warmup=1)
    if n <= 200:
        return Budget(50, 400, 20.0)
    if n <= 1000:
        return Budget(30, 150, 20.0)
    return Budget(8, 30, 45.0, warmup=1)


def _cold_count(n: int, quick: bool) -> int:
    """How many new patients to post (each body is built beforehand, outside the timing)."""
    if quick:
        return 3
    return 150 if n <= 200 else 40 if n <= 1000 else 10


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cold_samples(
    post: Callable[[str, bytes], Any], url: str, bodies: list[bytes]
) -> dict[str, list[float]]:
    """Each new body once to the floor, then once to the hook: wall and thread CPU seconds."""
    samples: dict[str, list[float]] = {
        name: [] for name in ("floor_cold", "hook_cold", "floor_cold_cpu", "hook_cold_cpu")
    }
    for body in bodies:
        for name, target in (("floor_cold", FLOOR_PATH), ("hook_cold", url)):
            wall, cpu = time.perf_counter(), time.thread_time()
            _check(post(target, body), name)
            samples[f"{name}_cpu"].append(time.thread_time() - cpu)
            samples[name].append(time.perf_counter() - wall)
    return samples


def _check(response: Any, what: str) -> list[dict[str, Any]]:
    if response.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.get_data()[:300]!r}")
    cards: list[dict[str, Any]] = orjson.loads(response.get_data())["cards"]
    return cards


def measure(opts: Options, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """One record per (size, hook): json.loads, floor, cold and warm hook summaries."""
    app = bench_app(opts.workdir)
    client = app.test_client()
    epoch = datetime.now(UTC)
    serial = 0  # new patients across the whole run: no body is ever posted twice cold
    records: list[dict[str, Any]] = []

    def post(url: str, body: bytes) -> Any:
        return client.post(url, data=body, content_type=JSON)

    for n in sizes:
        for hook, service_id in SERVICES.items():
            raw = orjson.dumps(synth.request_body(hook, n))
            url = f"/cds-services/{service_id}"
            bodies = []
            for _ in range(_cold_count(n, opts.quick)):
                serial += 1
                bodies.append(synth.new_patient_body(hook, n, serial, epoch))
            load_before = _load()
            cold = cold_samples(post, url, bodies)
            del bodies

            def call(url: str = url, raw: bytes = raw) -> Any:
                return post(url, raw)

            def unvalidated(call: Any = call) -> Any:
                app.config["VALIDATE_RESPONSES"] = False
                try:
                    return call()
                finally:
                    app.config["VALIDATE_RESPONSES"] = True

            cards = _check(call(), f"{hook} n={n}")

            def parse(raw: bytes = raw) -> Any:
                return json.loads(raw)

            def floor(raw: bytes = raw) -> Any:
                return post(FLOOR_PATH, raw)

            ops: dict[str, Callable[[], object]] = {"json_loads": parse, "floor": floor}
            ops["hook"] = call
            if n == synth.TYPICAL:
                ops["hook_unvalidated"] = unvalidated
            samples = interleaved(ops, _budget(n, opts.quick))
            record: dict[str, Any] = {
                "resources": synth.resource_count(orjson.loads(raw)),
                "hook": hook,
                "body_bytes": len(raw),
                "cards": [c.get("summary") for c in cards],
                "load": f"{load_before} -> {_load()}",
                "ms": {
                    name: asdict(summarize(values)) for name, values in {**samples, **cold}.items()
                },
            }
            records.append(record)
    return records


def _ratio(record: dict[str, Any]) -> float:
    ms = record["ms"]
    return float(ms["hook"]["p50"] / ms["floor"]["p50"])


def _p(summary: dict[str, Any]) -> str:
    return f"{fmt_ms(summary['p50'])} / {fmt_ms(summary['p95'])} / {fmt_ms(summary['p99'])}"


def _cold_ratio(record: dict[str, Any], clock: str = "") -> float:
    """Cold hook p50 over the floor p50 of the same new bodies (clock "_cpu": thread CPU)."""
    ms = record["ms"]
    return float(ms[f"hook_cold{clock}"]["p50"] / ms[f"floor_cold{clock}"]["p50"])


def _targets(records: list[dict[str, Any]]) -> list[Target]:
    targets = []
    cold = [r for r in records if r["resources"] in COLD_SIZES]
    if cold:
        targets.append(
            Target(
                "cold hook latency (every call a new patient) within 3x the floor at 100, 1,000"
                " and 10,000 resources (p50 wall; thread CPU beside)",
                all(_cold_ratio(r) <= 3.0 for r in cold),
                "; ".join(
                    f"{r['hook']} @{r['resources']:,}: {_cold_ratio(r):.1f}x"
                    f" (CPU {_cold_ratio(r, '_cpu'):.1f}x)"
                    for r in cold
                ),
            )
        )
    big = [r for r in records if r["resources"] >= 1000]
    if big:
        targets.append(
            Target(
                "the same warm (one body again and again), at 1,000 and 10,000 resources",
                all(_ratio(r) <= 3.0 for r in big),
                "; ".join(f"{r['hook']} @{r['resources']:,}: {_ratio(r):.1f}x" for r in big),
            )
        )
    typical = [r for r in records if r["resources"] == synth.TYPICAL]
    if typical:
        targets.append(
            Target(
                f"typical request ({synth.TYPICAL} resources) in-process p50 < 10 ms, p99 < 50 ms,"
                " cold",
                all(
                    r["ms"]["hook_cold"]["p50"] < 10 and r["ms"]["hook_cold"]["p99"] < 50
                    for r in typical
                ),
                "; ".join(
                    f"{r['hook']}: cold p50 {fmt_ms(r['ms']['hook_cold']['p50'])} ms, "
                    f"p99 {fmt_ms(r['ms']['hook_cold']['p99'])} ms (warm p50 "
                    f"{fmt_ms(r['ms']['hook']['p50'])}, p99 {fmt_ms(r['ms']['hook']['p99'])})"
                    for r in typical
                ),
            )
        )
    return targets


COLUMNS = [
    "resources",
    "hook",
    "body",
    "floor p50 (new bodies)",
    "**cold** p50 / p95 / p99",
    "**cold / floor** (CPU)",
    "warm p50 / p95 / p99",
    "warm / floor",
    "samples (cold, warm)",
    "load avg before -> after",
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
                fmt_ms(ms["floor_cold"]["p50"]),
                _p(ms["hook_cold"]),
                f"{_cold_ratio(r):.1f}x ({_cold_ratio(r, '_cpu'):.1f}x)",
                _p(ms["hook"]),
                f"{_ratio(r):.1f}x",
                f"{ms['hook_cold']['n']}, {ms['hook']['n']}",
                r["load"],
            ]
        )
    section.notes.append(
        "cold: every call is " + synth.NEW_PATIENT + "; floor = json.loads of that same body"
        " behind the same middleware, posted just before it. warm: one body again and again"
        " (no mapping memo remains: it is mapped again every time)."
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
