"""Timing loops bounded in count and time, and the summaries the report shows."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Latency percentiles of one measurement, in milliseconds."""

    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(seconds: Sequence[float]) -> Summary:
    ms = sorted(s * 1000.0 for s in seconds)
    return Summary(
        n=len(ms),
        p50=percentile(ms, 50),
        p95=percentile(ms, 95),
        p99=percentile(ms, 99),
        mean=sum(ms) / len(ms) if ms else float("nan"),
        max=ms[-1] if ms else float("nan"),
    )


@dataclass(frozen=True)
class Budget:
    """How many samples to take: at least `min_runs`, at most `max_runs` or `seconds`."""

    min_runs: int
    max_runs: int
    seconds: float
    warmup: int = 2


def interleaved(ops: dict[str, Callable[[], object]], budget: Budget) -> dict[str, list[float]]:
    """Time several operations round-robin, so machine load drifts hit them all alike."""
    for _ in range(budget.warmup):
        for op in ops.values():
            op()
    samples: dict[str, list[float]] = {name: [] for name in ops}
    started = time.perf_counter()
    runs = 0
    while runs < budget.max_runs and (
        runs < budget.min_runs or time.perf_counter() - started < budget.seconds
    ):
        for name, op in ops.items():
            t0 = time.perf_counter()
            op()
            samples[name].append(time.perf_counter() - t0)
        runs += 1
    return samples


def fmt_ms(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
