"""Cold MedicationRequest mapping, us a resource (thread CPU, best of rounds).

Maps only the `medications` prefetch Bundle of new patients (`synth.new_patient_body`, lazy
as the hook reads it, no memo) and the order-select draftOrders (decoded, as the hook reads
the context). Run: `python -m benchmarks.bench_meds [--patients 60] [--rounds 7] [--size 200]`.
"""

from __future__ import annotations

import argparse
import time
import timeit
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from benchmarks import synth
from fhir_mappings import map_order_context, map_patient_state
from fhir_mappings.lazy import lazy_members


class _Body(msgspec.Struct):
    prefetch: msgspec.Raw


def _best(run: Any, rounds: int) -> float:
    return min(timeit.repeat(run, number=1, repeat=rounds, timer=time.thread_time))


def main() -> None:
    """Print us per MedicationRequest for prefetch Bundles and for draftOrders."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=synth.TYPICAL)
    opts = parser.parse_args()
    epoch = datetime.now(UTC)
    bodies = [
        synth.new_patient_body("order-select", opts.size, 30_000 + i, epoch)
        for i in range(opts.patients)
    ]
    now = datetime.now(UTC)
    meds = [
        {"medications": lazy_members(msgspec.json.decode(b, type=_Body).prefetch)["medications"]}
        for b in bodies
    ]
    drafts = [orjson.loads(b)["context"]["draftOrders"] for b in bodies]
    per_chart = sum(len(m["medications"]["entry"]) for m in meds) / len(meds)
    per_draft = sum(len(d["entry"]) for d in drafts) / len(drafts)
    for p in meds[:3]:
        map_patient_state(p, now=now)

    def prefetches() -> None:
        for p in meds:
            map_patient_state(p, now=now)

    def orders() -> None:
        for d in drafts:
            map_order_context(d, ["MedicationRequest/med-90001"], now=now)

    cpu = _best(prefetches, opts.rounds)
    print(
        f"prefetch medications: {per_chart:.0f} a chart, "
        f"{cpu / len(meds) / per_chart * 1e6:.1f} us a MedicationRequest"
    )
    cpu = _best(orders, opts.rounds)
    print(
        f"draftOrders: {per_draft:.0f} a call, "
        f"{cpu / len(drafts) / per_draft * 1e6:.1f} us a MedicationRequest"
    )


if __name__ == "__main__":
    main()
