"""What the benchmarks share: the app under test, options, and the report's building blocks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

SERVICES = {"patient-view": "myopathy-patient-view", "order-select": "myopathy-order-select"}
# The benchmarks measure the service, not the limiter's refusal: one client sends far more
# than the production default (6000 a minute) allows.
BENCH_SETTINGS: dict[str, Any] = {
    "AUTH": "disabled",
    "BENCH_FLOOR_ENDPOINT": True,
    "RATE_LIMIT": "100000000 per minute",
    # 10,000 resources are ~10 MB of JSON, over the production default of 8 MiB (413).
    "MAX_REQUEST_BYTES": 64 * 1024 * 1024,
    "LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True)
class Options:
    quick: bool
    workdir: Path
    sizes: tuple[int, ...]
    load_seconds: float
    load_connections: int
    rounds: int
    worker_class: str = "buffered"


@dataclass(frozen=True)
class Target:
    """One performance target (docs/performance.md) and where the run stands against it."""

    name: str
    met: bool | None  # None: not measured in this run
    measured: str


@dataclass
class Section:
    """One benchmark's part of the report: a table, notes, targets and raw figures."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # written beside the report

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.rows:
            lines.append("| " + " | ".join(self.columns) + " |")
            lines.append("|" + "---|" * len(self.columns))
            lines += ["| " + " | ".join(row) + " |" for row in self.rows]
            lines.append("")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def bench_app(workdir: Path, **overrides: Any) -> Flask:
    """The production app factory with the benchmark settings and a scratch data dir."""
    from benchmarks.floor import create_bench_app

    # The "authentication disabled" warning is the point here; keep it out of the report.
    logging.getLogger("cds_service").setLevel(logging.ERROR)
    config = dict(BENCH_SETTINGS, DATA_DIR=str(workdir / "data"), LOG_LEVEL="ERROR")
    config.update(overrides)
    app = create_bench_app(config)
    return app
