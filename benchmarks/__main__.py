"""`python -m benchmarks [--quick] [--only NAME ...]`: run the benchmarks, print one report.

Not part of the test suite: timings on a shared machine are measured on demand, never asserted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from benchmarks import synth
from benchmarks.common import Options, Section

# name -> module with run(opts) -> Section. External ones (other issues' benchmarks) are
# adapted in benchmarks/external.py and skipped with a note while their module is absent.
BENCHMARKS: dict[str, str] = {
    "latency": "benchmarks.bench_latency",
    "load": "benchmarks.bench_load",
    "memory": "benchmarks.bench_memory",
    "mapping": "benchmarks.external",
    "fetch": "benchmarks.external",
    "profile": "benchmarks.bench_profile",
    "memos": "benchmarks.bench_memos",
    "instructions": "benchmarks.bench_instructions",
}
DEFAULT = ["latency", "load", "memory", "memos", "mapping", "fetch"]


def machine() -> dict[str, str]:
    """What the figures came from: cores, memory, CPU, Python, load at start."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_at_start": " ".join(f"{v:.2f}" for v in load),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        help="run only this benchmark (repeatable); default: " + ", ".join(DEFAULT),
    )
    parser.add_argument("--quick", action="store_true", help="few samples: checks the harness")
    parser.add_argument(
        "--sizes",
        default=None,
        help="prefetch sizes for the latency benchmark (default 10,100,1000,10000)",
    )
    parser.add_argument("--load-seconds", type=float, default=None, help="wrk run length")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=2, help="load rounds (each endpoint)")
    parser.add_argument(
        "--worker-class",
        choices=["buffered", "gthread"],
        default="buffered",
        help="`cds-service serve --worker-class` of the load benchmark",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="where report.md/json go"
    )
    return parser.parse_args(argv)


def _sizes(args: argparse.Namespace) -> tuple[int, ...]:
    if args.sizes:
        return tuple(int(s) for s in args.sizes.split(","))
    return (10, 100, 1000) if args.quick else synth.SIZES


def render(sections: list[Section], info: dict[str, str], argv: list[str]) -> str:
    lines = ["# Benchmark report", ""]
    lines.append("Command: `python -m benchmarks " + " ".join(argv) + "`")
    lines.append("")
    lines.append(
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory']} RAM, "
        f"Python {info['python']}, {info['os']}; load average at start {info['load_at_start']};"
        f" {info['date']}."
    )
    lines.append("")
    targets = [t for s in sections for t in s.targets]
    if targets:
        lines += ["## Targets", "", "| target | status | measured |", "|---|---|---|"]
        for t in targets:
            status = "not measured" if t.met is None else ("met" if t.met else "missed")
            lines.append(f"| {t.name} | {status} | {t.measured} |")
        lines.append("")
    for section in sections:
        lines.append(section.markdown())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    names = args.only or DEFAULT
    info = machine()
    print(f"machine: {info}", file=sys.stderr, flush=True)
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmp:
        opts = Options(
            quick=args.quick,
            workdir=Path(tmp),
            sizes=_sizes(args),
            load_seconds=args.load_seconds or (3.0 if args.quick else 15.0),
            load_connections=args.connections,
            rounds=1 if args.quick else args.rounds,
            worker_class=args.worker_class,
        )
        for name in names:
            module = importlib.import_module(BENCHMARKS[name])
            runner: Callable[..., Section] = module.run
            started = time.perf_counter()
            print(f"running {name} ...", file=sys.stderr, flush=True)
            section = runner(opts, name) if module.__name__.endswith("external") else runner(opts)
            print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
            sections.append(section)
    report = render(sections, info, argv)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(report)
    for section in sections:
        for name, text in section.files.items():
            (args.out / name).write_text(text)
    raw = {
        "machine": info,
        "argv": argv,
        "sections": [{k: v for k, v in s.__dict__.items() if k != "files"} for s in sections],
    }
    (args.out / "report.json").write_bytes(
        orjson.dumps(raw, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
