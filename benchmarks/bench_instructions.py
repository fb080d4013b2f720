"""Instructions per cold call, counted by valgrind (callgrind): the same on a busy machine.

Timings on a shared machine drift by 10-30% from minute to minute; an instruction count does
not (it ignores cache misses and the kernel, so it is a guide, not the latency). Each stage
runs in a child process under callgrind, counting only inside one `itertools.starmap` over
new typical patients (synth.NEW_PATIENT) after a warm-up, with a fixed hash seed:

- floor: `json.loads` of the body (what benchmarks/floor.py pays for it);
- body: the edge's reading of a hook body (`read_hook_json`: envelope, depth scan, each
  prefetch Bundle's light members, or a search's typed entries with them) and the entry
  bounds (`check_hook_body`);
- mapping: `map_patient_state` of the lazy prefetch (typed decode, checks, mapping);
- call: a whole patient-view call through the Flask test client (rules, cards, their checks,
  the snooze look-up and the audit hand-off too; the audit writer's thread adds +-3%).

Then a served worker's instructions a request, floor endpoint against patient-view, at the
typical size (benchmarks/served_instructions.py): the load benchmark's ratio, counted.

Needs valgrind (`apt-get install -y valgrind`). `python -m benchmarks --only instructions`.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

from benchmarks import served_instructions, synth
from benchmarks.common import SERVICES, Options, Section, bench_app
from cds_service.config import DEFAULTS
from cds_service.hooks.bodies import read_hook_json
from cds_service.security.bounds import check_hook_body
from fhir_mappings import map_patient_state

STAGES = ("floor", "body", "mapping", "call")
SIZES = (100, synth.TYPICAL)
_COLLECTED = re.compile(r"Collected : (\d+)")


def _bodies(size: int, count: int) -> list[bytes]:
    return [
        synth.new_patient_body("patient-view", size, 20_000 + i, synth.COUNT_EPOCH)
        for i in range(count)
    ]


def _request(body: bytes) -> Any:
    return EnvironBuilder(method="POST", data=body, content_type="application/json").get_request()


def _work(stage: str, size: int, calls: int, workdir: Path) -> tuple[Any, list[Any]]:
    """The function the stage counts and its arguments, one per call (warm-up first)."""
    bodies = _bodies(size, calls + 1)
    limits = {
        "max_bytes": 64 * 1024 * 1024,
        "max_depth": DEFAULTS["MAX_JSON_DEPTH"],
        "max_entries": DEFAULTS["MAX_BUNDLE_ENTRIES"],
    }
    if stage == "floor":
        return json.loads, bodies
    if stage == "body":

        def body(request: Any) -> None:
            check_hook_body(read_hook_json(request, **limits), DEFAULTS)

        return body, [_request(b) for b in bodies]
    if stage == "mapping":

        def mapping(prefetch: Any) -> None:
            map_patient_state(prefetch, now=synth.COUNT_EPOCH)

        return mapping, [read_hook_json(_request(b), **limits)["prefetch"] for b in bodies]
    client = bench_app(workdir).test_client()
    url = f"/cds-services/{SERVICES['patient-view']}"

    def call(body: bytes) -> None:
        client.post(url, data=body, content_type="application/json")

    return call, bodies


def child(stage: str, size: int, calls: int, workdir: Path) -> None:
    """Runs under callgrind: a warm-up call, then `calls` counted ones inside starmap."""
    work, args = _work(stage, size, calls, workdir)
    work(args[0])
    list(itertools.starmap(work, [(a,) for a in args[1:]]))


def count(stage: str, size: int, calls: int, workdir: Path) -> float:
    """Instructions per call of one stage (callgrind, in a child process)."""
    out = workdir / f"callgrind-{stage}-{size}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=starmap_next",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "benchmarks.bench_instructions",
        stage,
        str(size),
        str(calls),
        str(workdir / f"app-{stage}-{size}"),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind failed for {stage} @{size}: {done.stderr[-500:]}")
    out.unlink(missing_ok=True)
    return int(found.group(1)) / calls


def run(opts: Options) -> Section:
    section = Section(
        "Instructions per cold call (callgrind; new patients; the same on a busy machine)",
        [
            "resources",
            "body",
            "floor (json.loads)",
            "body reading",
            "mapping",
            "whole call",
            "reading + mapping / floor",
            "whole call / floor",
        ],
    )
    if shutil.which("valgrind") is None:
        section.notes.append("valgrind is not installed: `apt-get install -y valgrind`")
        return section
    calls = 2 if opts.quick else 10
    for size in SIZES:
        got = {stage: count(stage, size, calls, opts.workdir) for stage in STAGES}
        kib = len(_bodies(size, 1)[0]) / 1024
        section.data[str(size)] = got
        section.rows.append(
            [
                f"{size:,}",
                f"{kib:,.0f} KiB",
                *(f"{got[s] / 1e6:.2f} M" for s in STAGES),
                f"{(got['body'] + got['mapping']) / got['floor']:.2f}x",
                f"{got['call'] / got['floor']:.2f}x",
            ]
        )
    section.notes.append(
        f"{calls} new patients a stage after one warm-up call, PYTHONHASHSEED=0; an instruction "
        "count leaves out cache misses and the kernel (thread starts, system calls), which the "
        "latency and load benchmarks see"
    )
    served = served_instructions.count(synth.TYPICAL, 3 if opts.quick else 20, opts.workdir)
    section.data["served"] = served
    section.notes.append(
        f"served (`serve --workers 1`, all the worker's threads, {synth.TYPICAL} resources, "
        f"new patients): the floor endpoint {served['trivial'] / 1e6:.2f} M instructions a "
        f"request, patient-view {served['hook'] / 1e6:.2f} M = "
        f"{served['hook'] / served['trivial']:.2f}x; at equal time per instruction the hook "
        f"would get {served['trivial'] / served['hook']:.0%} of the floor's throughput (the "
        "load benchmark's cold target: 50%)"
    )
    return section


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
