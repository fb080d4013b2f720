"""Instructions a request costs a served worker, counted by callgrind: the load benchmark's
ratio without the machine's noise.

`cds-service serve --workers 1` (the floor endpoint beside the hooks, benchmarks/serve.py)
runs under callgrind three times with the same warm-up (10 new patients to each endpoint):
once with nothing after it, once with `calls` new patients to the floor endpoint, once with
them to patient-view. A request's count is the worker's total (every thread: request
threads, I/O loop, audit writer) less the warm-up-only run's, divided by `calls`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import synth
from benchmarks.bench_load import HOST, free_port, post, wait_ready
from benchmarks.common import BENCH_SETTINGS, SERVICES
from benchmarks.floor import PATH as FLOOR_PATH

WARMUP = 10
ENDPOINTS = {"trivial": FLOOR_PATH, "hook": f"/cds-services/{SERVICES['patient-view']}"}


def _answered(url: str, body: bytes) -> None:
    status = post(url, body)
    if status != 200:
        raise RuntimeError(f"{url}: HTTP {status}")


def worker_total(folder: Path, master: int) -> int:
    """The worker's instruction total: the callgrind file of the pid that is not the master."""
    totals = [
        int(line.split()[1])
        for out in folder.glob("cg.*")
        if out.name != f"cg.{master}"
        for line in out.read_text().splitlines()
        if line.startswith("totals:")
    ]
    if len(totals) != 1:
        raise RuntimeError(f"expected one worker's callgrind totals in {folder}, got {totals}")
    return totals[0]


def _run(endpoint: str | None, size: int, calls: int, folder: Path) -> int:
    """One served worker's instructions: warm-up, then `calls` new patients to `endpoint`."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ, PYTHONHASHSEED="0", CDS_DATA_DIR=str(folder / "data"))
    env.update({f"CDS_{key}": str(value) for key, value in BENCH_SETTINGS.items()})
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/cg.%p"]
    command += [sys.executable, "-m", "benchmarks.serve", "--host", HOST, "--port", str(port)]
    command += ["--workers", "1", "--max-requests", "0"]
    bodies = [
        synth.new_patient_body("patient-view", size, 60_000 + i, synth.COUNT_EPOCH)
        for i in range(WARMUP + calls)
    ]
    with (folder / "serve.log").open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://{HOST}:{port}"
            wait_ready(port, proc, timeout=600.0, workers=1)  # valgrind: a slow start
            for body in bodies[:WARMUP]:
                for path in ENDPOINTS.values():
                    _answered(base + path, body)
            if endpoint is not None:
                for body in bodies[WARMUP:]:
                    _answered(base + endpoint, body)
            time.sleep(2.0)  # the audit writer's batch is written before the count ends
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=300)
    return worker_total(folder, proc.pid)


def count(size: int, calls: int, workdir: Path) -> dict[str, float]:
    """Instructions a request for the floor endpoint ("trivial") and patient-view ("hook")."""
    runs = {"none": None, **ENDPOINTS}
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {
            name: pool.submit(_run, path, size, calls, workdir / f"served-{size}-{name}")
            for name, path in runs.items()
        }
        totals = {name: future.result() for name, future in futures.items()}
    return {name: (totals[name] - totals["none"]) / calls for name in ENDPOINTS}
