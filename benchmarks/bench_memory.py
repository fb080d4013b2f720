"""Peak resident memory of one process serving a 10,000-resource request (in-process app).

Runs in a fresh child process so nothing else the runner did counts. The body is written to
a file by the parent; the child resets its peak (/proc/self/clear_refs) just before the call.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from benchmarks import synth
from benchmarks.common import SERVICES, Options, Section, bench_app

BIG = 10_000


def _status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def child(body_path: Path, typical_path: Path) -> dict[str, Any]:
    """In the child: app, one typical call, then the big call twice (cold, then warm)."""
    before_app = _status()
    with tempfile.TemporaryDirectory() as tmp:
        client = bench_app(Path(tmp)).test_client()
        url = f"/cds-services/{SERVICES['patient-view']}"
        typical = typical_path.read_bytes()
        client.post(url, data=typical, content_type="application/json")
        after_typical = _status()
        body = body_path.read_bytes()
        calls = []
        for _ in range(2):
            _reset_peak()
            start = _status()
            status = client.post(url, data=body, content_type="application/json").status_code
            calls.append({"status": status, "start": start, "end": _status()})
    return {"before_app": before_app, "after_typical": after_typical, "big_calls": calls}


def measure(opts: Options) -> dict[str, Any]:
    body = opts.workdir / "memory-big.json"
    body.write_bytes(orjson.dumps(synth.request_body("patient-view", BIG)))
    typical = opts.workdir / "memory-typical.json"
    typical.write_bytes(orjson.dumps(synth.request_body("patient-view", synth.TYPICAL)))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_memory", str(body), str(typical)],
        capture_output=True,
        timeout=600,
        check=True,
    )
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    result["body_bytes"] = body.stat().st_size
    return result


def run(opts: Options) -> Section:
    data = measure(opts)
    section = Section(
        f"Memory of one process and a {BIG:,}-resource request (MiB)",
        ["stage", "RSS", "peak RSS"],
        data=data,
    )
    rows = [
        ("interpreter, before create_app", data["before_app"]),
        (f"app created, one typical ({synth.TYPICAL}) request served", data["after_typical"]),
    ]
    for i, call in enumerate(data["big_calls"]):
        label = "cold" if i == 0 else "warm (memos filled)"
        rows.append((f"{BIG:,}-resource request, {label}: before", call["start"]))
        rows.append((f"{BIG:,}-resource request, {label}: after", call["end"]))
    for label, mem in rows:
        section.rows.append([label, f"{mem['VmRSS']:.0f}", f"{mem['VmHWM']:.0f}"])
    cold = data["big_calls"][0]
    section.notes.append(
        f"the {BIG:,}-resource body is {data['body_bytes'] / 1e6:.1f} MB; its cold call adds"
        f" {cold['end']['VmHWM'] - cold['start']['VmRSS']:.0f} MiB at peak to the process"
        f" (HTTP {cold['status']})"
    )
    peak = max(c["end"]["VmHWM"] for c in data["big_calls"])
    # Not the per-worker target (bench_load measures real workers): the test client keeps
    # its own copies of the body, and the harness reads it from a file first.
    section.notes.append(
        f"one process through the test client: baseline {data['after_typical']['VmRSS']:.0f}"
        f" MiB, peak {peak:.0f} MiB (the test client holds extra copies of the 10 MB body;"
        " the per-worker figures are in the load section)"
    )
    return section


if __name__ == "__main__":
    print(orjson.dumps(child(Path(sys.argv[1]), Path(sys.argv[2]))).decode())
