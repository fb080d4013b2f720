"""What each memo is worth on a realistic mix of charts: mostly new, some re-opened.

One fixed sequence of typical patient-view calls (synth.TYPICAL resources) goes through the
Flask test client once per memo setting, settings taking turns round by round so that load
drifts hit them alike. The mix: NEW of the calls are new patients (synth.NEW_PATIENT), REOPEN
re-open one of the last 30 charts unchanged, CHANGED re-open one with a new CK result (the
prefetch differs by one Observation). Reported: thread CPU per call, each round's mean and
their median; what the memos hold in memory shows in the load benchmark's worker figures.
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
from fhir_mappings import state

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


def mix(epoch: datetime, calls: int, seed: int = 17) -> tuple[list[bytes], dict[str, int]]:
    """The call sequence (bodies built beforehand) and how many calls of each kind it holds."""
    rng = random.Random(seed)
    hook = "patient-view"
    seen: list[bytes] = []
    out: list[bytes] = []
    kinds = {"new": 0, "reopen": 0, "changed": 0}
    for serial in range(1, calls + 1):
        roll = rng.random()
        if not seen or roll < NEW:
            body = synth.new_patient_body(hook, synth.TYPICAL, 10_000 + serial, epoch)
            kinds["new"] += 1
        elif roll < NEW + REOPEN:
            body = rng.choice(seen[-RECENT:])
            kinds["reopen"] += 1
        else:
            body = _with_new_ck(rng.choice(seen[-RECENT:]), serial)
            kinds["changed"] += 1
        seen.append(body)
        out.append(body)
    return out, kinds


@contextmanager
def memos(prefetch: bool, outcome: bool) -> Iterator[None]:
    """The mapping memos on or off (size 0), emptied before and after."""
    sizes = (state.PREFETCH_MEMO.size, _outcome_size())
    state.PREFETCH_MEMO.size = sizes[0] if prefetch else 0
    _set_outcome_size(sizes[1] if outcome else 0)
    state.forget_memos()
    try:
        yield
    finally:
        state.PREFETCH_MEMO.size = sizes[0]
        _set_outcome_size(sizes[1])
        state.forget_memos()


def _outcome_size() -> int:
    memo = getattr(state, "OUTCOME_MEMO", None)
    return int(memo.size) if memo is not None else 0


def _set_outcome_size(size: int) -> None:
    memo = getattr(state, "OUTCOME_MEMO", None)
    if memo is not None:
        memo.size = size


def run(opts: Options) -> Section:
    """CPU per call on the mix for each memo setting."""
    app = bench_app(opts.workdir)
    client = app.test_client()
    url = f"/cds-services/{SERVICES['patient-view']}"
    bodies, kinds = mix(datetime.now(UTC), 20 if opts.quick else CALLS)
    settings: dict[str, tuple[bool, bool]] = {"prefetch memo only": (True, False)}
    if hasattr(state, "OUTCOME_MEMO"):
        settings = {
            "both memos": (True, True),
            "prefetch memo only": (True, False),
            "per-resource memo only": (False, True),
        }
    settings["no memo"] = (False, False)

    split: dict[str, list[float]] = {"hit": [], "miss": []}  # calls the prefetch memo answered

    def sequence() -> float:
        used = 0.0
        for body in bodies:
            hits = state.PREFETCH_MEMO.hits
            started = time.thread_time()
            response = client.post(url, data=body, content_type="application/json")
            spent = time.thread_time() - started
            used += spent
            if state.PREFETCH_MEMO.size:
                split["hit" if state.PREFETCH_MEMO.hits > hits else "miss"].append(spent)
            if response.status_code != 200:
                raise RuntimeError(f"memos: HTTP {response.status_code}")
        return used * 1000 / len(bodies)

    runs: dict[str, list[float]] = {name: [] for name in settings}
    sequence()  # warm-up: imports, terminology, first-call costs
    split["hit"].clear()
    split["miss"].clear()
    for _ in range(1 if opts.quick else 3):
        for name, (prefetch, outcome) in settings.items():
            with memos(prefetch, outcome):
                runs[name].append(sequence())
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
    if split["hit"] and split["miss"]:
        hit, miss = statistics.median(split["hit"]), statistics.median(split["miss"])
        section.notes.append(
            f"with the prefetch memo on, a call it answered cost {hit * 1000:.2f} ms CPU (median"
            f" of {len(split['hit'])}), one it did not {miss * 1000:.2f} ms (median of"
            f" {len(split['miss'])}, including the digest and remembering the result)"
        )
    section.data = {"runs": runs, "kinds": kinds, "split": split}
    return section
