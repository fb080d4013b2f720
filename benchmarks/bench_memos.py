"""What the remaining memo is worth on a realistic mix of charts: mostly new, some re-opened.

One fixed sequence of typical patient-view calls (synth.TYPICAL resources) goes through the
Flask test client once per setting (the card verdict memo on or off; no mapping memo remains),
settings taking turns round by round so that load drifts hit them alike. The mix: NEW of the
calls are new patients (synth.NEW_PATIENT), REOPEN re-open one of the last 30 charts
unchanged, CHANGED re-open one with a new CK result (the prefetch differs by one
Observation). Reported: thread CPU per call, each round's mean and their median, and the CPU
per call of each kind of chart.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson

from benchmarks import synth
from benchmarks.common import SERVICES, Options, Section, bench_app
from cds_service.hooks.routes import CARD_VERDICTS

NEW, REOPEN, CHANGED = 0.7, 0.2, 0.1
CALLS = 200
RECENT = 30


def _with_new_ck(body: bytes, serial: int) -> bytes:
    """The same chart with one more CK result (as after a new blood draw)."""
    data = orjson.loads(body)
    labs = data["prefetch"]["labs"]
    new = dict(labs["entry"][0]["resource"], id=f"new-ck-{serial}")
    new["valueQuantity"] = dict(new["valueQuantity"], value=1234.5 + serial)
    labs["entry"].insert(0, {"fullUrl": f"urn:new-ck-{serial}", "resource": new})
    return orjson.dumps(data)


def mix(
    epoch: datetime, calls: int, seed: int = 17
) -> tuple[list[bytes], list[str], dict[str, int]]:
    """The call sequence (bodies built beforehand), each call's kind, and the counts."""
    rng = random.Random(seed)
    hook = "patient-view"
    seen: list[bytes] = []
    out: list[bytes] = []
    order: list[str] = []
    kinds = {"new": 0, "reopen": 0, "changed": 0}
    for serial in range(1, calls + 1):
        roll = rng.random()
        if not seen or roll < NEW:
            body = synth.new_patient_body(hook, synth.TYPICAL, 10_000 + serial, epoch)
            kind = "new"
        elif roll < NEW + REOPEN:
            body = rng.choice(seen[-RECENT:])
            kind = "reopen"
        else:
            body = _with_new_ck(rng.choice(seen[-RECENT:]), serial)
            kind = "changed"
        kinds[kind] += 1
        seen.append(body)
        out.append(body)
        order.append(kind)
    return out, order, kinds


@contextmanager
def memos(cards: bool) -> Iterator[None]:
    """The card verdict memo on or off (size 0), emptied before and after."""
    size = CARD_VERDICTS.size
    CARD_VERDICTS.size = size if cards else 0
    CARD_VERDICTS.clear()
    try:
        yield
    finally:
        CARD_VERDICTS.size = size
        CARD_VERDICTS.clear()


def run(opts: Options) -> Section:
    """CPU per call on the mix for each memo setting."""
    app = bench_app(opts.workdir)
    client = app.test_client()
    url = f"/cds-services/{SERVICES['patient-view']}"
    bodies, order, kinds = mix(datetime.now(UTC), 20 if opts.quick else CALLS)
    settings = {"card verdict memo": True, "no memo": False}
    # CPU per call by kind of chart, with the memo on: a re-opened chart costs what a new one does
    split: dict[str, list[float]] = {kind: [] for kind in kinds}

    def sequence(record: bool = False) -> float:
        used = 0.0
        for body, kind in zip(bodies, order, strict=True):
            started = time.thread_time()
            response = client.post(url, data=body, content_type="application/json")
            spent = time.thread_time() - started
            used += spent
            if record:
                split[kind].append(spent)
            if response.status_code != 200:
                raise RuntimeError(f"memos: HTTP {response.status_code}")
        return used * 1000 / len(bodies)

    runs: dict[str, list[float]] = {name: [] for name in settings}
    sequence()  # warm-up: imports, terminology, first-call costs
    for _ in range(1 if opts.quick else 3):
        for name, cards in settings.items():
            with memos(cards):
                runs[name].append(sequence(record=cards))
    columns = ["memos", "CPU ms per call (median of rounds)", "rounds", "vs no memo"]
    section = Section("Memos on a realistic mix (thread CPU per call)", columns)
    base = statistics.median(runs["no memo"])
    for name, values in runs.items():
        mid = statistics.median(values)
        section.rows.append(
            [
                name,
                f"{mid:.2f}",
                ", ".join(f"{v:.2f}" for v in values),
                f"{(mid - base) / base:+.0%}",
            ]
        )
    section.notes.append(
        f"{len(bodies)} patient-view calls of {synth.TYPICAL} resources: {kinds['new']} new"
        f" patients, {kinds['reopen']} re-opened unchanged, {kinds['changed']} re-opened with"
        " one new CK result"
    )
    section.notes.append(
        "CPU per call by chart (median, memo on): "
        + "; ".join(
            f"{kind} {statistics.median(times) * 1000:.2f} ms ({len(times)} calls)"
            for kind, times in split.items()
            if times
        )
        + ". No mapping memo remains: a re-opened chart is decoded and mapped again."
    )
    section.data = {"runs": runs, "kinds": kinds, "split": split}
    return section
