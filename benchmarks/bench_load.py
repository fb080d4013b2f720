"""Throughput and latency under load: `cds-service serve --workers 2` on loopback, driven by wrk.

The trivial endpoint is the floor endpoint (benchmarks/floor.py) of the same server, so both
runs share the server, its middleware and the request body; only the work differs. Every wrk
run is bounded in time (-d) and in count (the Lua script stops after MAX_REQUESTS answers).
Also reads the workers' resident memory, and their peak after one 10,000-resource request.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import synth
from benchmarks.common import BENCH_SETTINGS, SERVICES, Options, Section, Target
from benchmarks.floor import PATH as FLOOR_PATH
from benchmarks.stats import fmt_ms

HOST = "127.0.0.1"  # loopback only
WORKERS = 2
MAX_REQUESTS = 200_000
TRIVIAL = "trivial (json.loads, no cards)"
WARMUP_CONNECTIONS = 30
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()
local answered = 0
function response(status, headers, body)
  answered = answered + 1
  if answered >= {max_requests} then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d,' ..
    '"max":%d,"mean":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


DISTINCT = 400  # typical new patients in rotation (synth.NEW_PATIENT): no memo helps
LUA_DISTINCT = """
local bodies = {{}}
for i = 0, {count} - 1 do
  local f = assert(io.open("{folder}/" .. i .. ".json", "rb"))
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
local sent = 0
local json = {{["Content-Type"] = "application/json"}}
function request()
  sent = sent + 1
  return wrk.format("POST", nil, json, bodies[sent % #bodies + 1])
end
"""


def _distinct_script(workdir: Path) -> Path:
    """A wrk script posting DISTINCT new typical patients in turn (LUA's report too)."""
    folder = workdir / "distinct"
    folder.mkdir(exist_ok=True)
    epoch = datetime.now(UTC)
    for i in range(DISTINCT):
        body = synth.new_patient_body("patient-view", synth.TYPICAL, 1 + i, epoch)
        (folder / f"{i}.json").write_bytes(body)
    report = LUA[LUA.index("local answered") :].format(max_requests=MAX_REQUESTS)
    script = workdir / "distinct.lua"
    script.write_text(LUA_DISTINCT.format(count=DISTINCT, folder=folder) + report)
    return script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(
    workdir: Path, port: int, worker_class: str = "buffered"
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update({f"CDS_{key}": str(value) for key, value in BENCH_SETTINGS.items()})
    env["CDS_DATA_DIR"] = str(workdir / "serve-data")
    command = [sys.executable, "-m", "benchmarks.serve", "--host", HOST, "--port", str(port)]
    # Steady-state workers: no recycling mid-run (the CPU and memory of each pid are read).
    command += ["--workers", str(WORKERS), "--max-requests", "0", "--worker-class", worker_class]
    log = (workdir / "serve.log").open("wb")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(
    port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0, workers: int = WORKERS
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cds-service serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as resp:
                if resp.status == 200 and len(worker_pids(proc.pid)) == workers:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("cds-service serve did not become ready")


def worker_pids(master: int) -> list[int]:
    """gunicorn workers: the children of the master process."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == master:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def memory_mib(pid: int) -> dict[str, float]:
    """Resident (VmRSS), peak resident (VmHWM) and proportional (Pss) memory, in MiB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    try:  # shared pages (libraries, the interpreter) count once across processes in Pss
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each process (all its threads), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def wrk(url: str, script: Path, seconds: float, connections: int) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    command += ["-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"WRKJSON (\{.*\})", done.stdout)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    result: dict[str, Any] = orjson.loads(match.group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as resp:
        resp.read()
        return int(resp.status)


def _script(workdir: Path, name: str, body: bytes) -> Path:
    body_path = workdir / f"{name}.json"
    body_path.write_bytes(body)
    script = workdir / f"{name}.lua"
    script.write_text(LUA.format(body=body_path, max_requests=MAX_REQUESTS))
    return script


def measure(opts: Options) -> dict[str, Any]:
    """wrk rounds against the floor and the typical hook; memory before and after a 10k call."""
    typical = orjson.dumps(synth.request_body("patient-view", synth.TYPICAL))
    big = orjson.dumps(synth.request_body("patient-view", 10_000))
    base = None
    port = free_port()
    proc = start_server(opts.workdir, port, opts.worker_class)
    try:
        wait_ready(port, proc)
        base = f"http://{HOST}:{port}"
        hook_url = f"{base}/cds-services/{SERVICES['patient-view']}"
        targets = {"trivial": f"{base}{FLOOR_PATH}", "hook": hook_url}
        scripts = {name: _script(opts.workdir, name, typical) for name in targets}
        for name, url in targets.items():  # warm both workers (imports, memos, pools)
            for _ in range(WARMUP_CONNECTIONS):  # one connection each: both workers accept
                post(url, typical)
            wrk(url, scripts[name], 2.0, opts.load_connections)
        idle = {pid: memory_mib(pid) for pid in worker_pids(proc.pid)}
        rounds: list[dict[str, Any]] = []
        workers = worker_pids(proc.pid)
        for _ in range(opts.rounds):
            for name, url in targets.items():
                before = cpu_seconds(workers)
                result = wrk(url, scripts[name], opts.load_seconds, opts.load_connections)
                after = cpu_seconds(workers)
                used = {pid: after[pid] - before[pid] for pid in workers}
                result["worker_cpu_s"] = used
                result["cpu_ms_per_request"] = sum(used.values()) * 1e3 / max(1, result["requests"])
                rounds.append({"endpoint": name, **result})
        loaded = {pid: memory_mib(pid) for pid in worker_pids(proc.pid)}
        status = post(hook_url, big)
        after_big = {pid: memory_mib(pid) for pid in worker_pids(proc.pid)}
        # Every request a chart the worker has not seen lately: the cold path under load, and
        # the workers' memory with their look-up memos at their bounds. The trivial endpoint
        # gets the same new bodies, in turn with the hook, so both sides parse the same bytes.
        script = _distinct_script(opts.workdir)
        cold: list[dict[str, Any]] = []
        for _ in range(opts.rounds):
            for name, url in targets.items():
                before = cpu_seconds(workers)
                result = wrk(url, script, opts.load_seconds, opts.load_connections)
                used = {pid: cpu_seconds(workers)[pid] - before[pid] for pid in workers}
                result["worker_cpu_s"] = used
                result["cpu_ms_per_request"] = sum(used.values()) * 1e3 / max(1, result["requests"])
                cold.append({"endpoint": name, **result})
        after_distinct = {pid: memory_mib(pid) for pid in worker_pids(proc.pid)}
        master = memory_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "rounds": rounds,
        "cold_rounds": cold,
        "memory": {
            "workers_after_warmup": idle,
            "workers_after_load": loaded,
            "workers_after_10k": after_big,
            "workers_after_distinct": after_distinct,
            "master": master,
            "big_status": status,
        },
        "body_bytes": len(typical),
    }


COLUMNS = [
    "round",
    "bodies",
    "endpoint",
    "requests",
    "req/s",
    "worker CPU ms / request",
    "CPU s per worker",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "errors / non-2xx",
]


def _per_busy_worker(run: dict[str, Any]) -> float:
    """req/s divided by the workers that served the run (CPU over a fifth of the busiest's)."""
    cpu = list(run["worker_cpu_s"].values())
    busy = sum(1 for c in cpu if c > 0.2 * max(cpu)) or 1
    return float(run["rps"]) / busy


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _row(round_no: int, body: str, r: dict[str, Any]) -> list[str]:
    endpoint = TRIVIAL if r["endpoint"] == "trivial" else "patient-view hook"
    return [
        str(round_no),
        body,
        endpoint,
        f"{r['requests']:,}",
        f"{r['rps']:.1f}",
        f"{r['cpu_ms_per_request']:.2f}",
        " / ".join(f"{v:.1f}" for v in r["worker_cpu_s"].values()),
        fmt_ms(r["p50"] / 1000),
        fmt_ms(r["p95"] / 1000),
        fmt_ms(r["p99"] / 1000),
        fmt_ms(r["max"] / 1000),
        str(r["errors"]),
    ]


def run(opts: Options) -> Section:
    title = (
        f"Throughput under load: `cds-service serve --workers {WORKERS} --worker-class "
        f"{opts.worker_class}` (4 threads), "
        f"wrk -t1 -c{opts.load_connections}, {opts.load_seconds:g} s a run, loopback"
    )
    section = Section(title, COLUMNS)
    if shutil.which("wrk") is None:
        section.notes.append("wrk is not installed: `apt-get install -y wrk` (Debian package)")
        section.targets.append(
            Target("throughput under load >= 60% of the trivial endpoint", None, "wrk missing")
        )
        return section
    data = measure(opts)
    section.data = data
    for body, runs in (("new patients", data["cold_rounds"]), ("one body", data["rounds"])):
        for i, r in enumerate(runs):
            section.rows.append(_row(i // 2 + 1, body, r))
    rps = {
        name: _median([r["rps"] for r in data["rounds"] if r["endpoint"] == name])
        for name in ("trivial", "hook")
    }
    raw_ratio = rps["hook"] / rps["trivial"]
    # gthread workers do not balance wrk's keep-alive connections: a run may have all of them
    # on one worker. Throughput per busy worker compares like with like.
    per_worker = {
        name: _median([_per_busy_worker(r) for r in data["rounds"] if r["endpoint"] == name])
        for name in ("trivial", "hook")
    }
    ratio = per_worker["hook"] / per_worker["trivial"]
    cpu = {
        name: _median([r["cpu_ms_per_request"] for r in data["rounds"] if r["endpoint"] == name])
        for name in ("trivial", "hook")
    }
    errors = sum(r["errors"] for r in data["rounds"])
    section.notes.append(
        f"request: patient-view, {synth.TYPICAL} resources, {data['body_bytes'] / 1024:.0f} KiB;"
        f" median req/s hook {rps['hook']:.1f} vs trivial {rps['trivial']:.1f} ="
        f" {raw_ratio:.0%}; per busy worker (CPU over a fifth of the busiest's)"
        f" {per_worker['hook']:.1f} vs {per_worker['trivial']:.1f} = {ratio:.0%};"
        f" errors or non-2xx answers: {errors}"
    )
    section.notes.append(
        f"worker CPU per request (independent of how wrk's connections spread over the two"
        f" workers): hook {cpu['hook']:.2f} ms vs trivial {cpu['trivial']:.2f} ms ="
        f" {cpu['trivial'] / cpu['hook']:.0%} of the trivial endpoint's throughput at equal CPU"
    )
    cold = {
        name: _median(
            [r["cpu_ms_per_request"] for r in data["cold_rounds"] if r["endpoint"] == name]
        )
        for name in ("trivial", "hook")
    }
    hook_runs = [r for r in data["cold_rounds"] if r["endpoint"] == "hook"]
    cold_errors = sum(r["errors"] for r in data["cold_rounds"])
    cold_share = cold["trivial"] / cold["hook"]
    section.notes.insert(
        0,
        f"**cold (headline)**: {DISTINCT} new typical patients in turn ({synth.NEW_PATIENT}),"
        f" the same bodies to the trivial endpoint and to the hook, in turn, {opts.rounds}"
        f" rounds each: median worker CPU {cold['hook']:.2f} ms a request against the trivial"
        f" endpoint's {cold['trivial']:.2f} ms = {cold_share:.0%} of its throughput at equal"
        f" CPU; hook p50 {fmt_ms(_median([r['p50'] for r in hook_runs]) / 1000)} / p99"
        f" {fmt_ms(_median([r['p99'] for r in hook_runs]) / 1000)} ms (median of the rounds),"
        f" errors or non-2xx {cold_errors}. Warm (one body repeated) beside it: hook"
        f" {cpu['hook']:.2f} ms vs trivial {cpu['trivial']:.2f} ms a request.",
    )
    mem = data["memory"]
    for label, key in (
        ("after warm-up", "workers_after_warmup"),
        ("after the load runs", "workers_after_load"),
        ("after one 10,000-resource request", "workers_after_10k"),
        (
            f"after the {DISTINCT} different patients (look-up memos at their bounds)",
            "workers_after_distinct",
        ),
    ):
        parts = [
            f"RSS {m['VmRSS']:.0f} MiB (peak {m['VmHWM']:.0f}, PSS {m.get('Pss', 0):.0f})"
            for m in mem[key].values()
        ]
        section.notes.append(f"workers {label}: " + "; ".join(parts))
    section.notes.append(f"master (arbiter) RSS {mem['master']['VmRSS']:.0f} MiB")
    peak = max(m["VmHWM"] for m in mem["workers_after_10k"].values())
    steady = max(m["VmRSS"] for m in mem["workers_after_distinct"].values())
    loaded_peak = max(m["VmHWM"] for m in mem["workers_after_load"].values())
    section.targets += [
        Target(
            "throughput with every request a new patient >= 50% of the trivial endpoint's"
            " (worker CPU per request)",
            cold_share >= 0.5 and cold_errors == 0,
            f"{cold_share:.0%}: {cold['hook']:.2f} vs {cold['trivial']:.2f} ms",
        ),
        Target(
            "throughput under load >= 60% of the trivial endpoint's, warm (one body repeated)",
            ratio >= 0.6 and errors == 0,
            f"{ratio:.0%} per busy worker ({per_worker['hook']:.0f} vs"
            f" {per_worker['trivial']:.0f} req/s); all workers: {raw_ratio:.0%}",
        ),
        Target(
            "< 150 MB (143 MiB) resident per worker, typical load",
            loaded_peak * 1.048576 < 150,
            f"peak {loaded_peak:.0f} MiB after the load runs",
        ),
        Target(
            "< 150 MB (143 MiB) resident per worker, after a 10,000-resource request",
            peak * 1.048576 < 150,
            f"peak {peak:.0f} MiB",
        ),
        Target(
            f"< 150 MB (143 MiB) resident per worker, after {DISTINCT} different patients",
            steady * 1.048576 < 150,
            f"{steady:.0f} MiB",
        ),
    ]
    return section
