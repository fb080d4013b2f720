"""A pyinstrument profile of the typical request, cold (new patients) and warm."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from benchmarks import synth
from benchmarks.common import SERVICES, Options, Section, bench_app


def run(opts: Options) -> Section:
    """Profile `calls` typical requests per hook; texts go to <out>/profile-<hook>-<mode>.txt."""
    section = Section("Profile of the typical request", [])
    try:
        from pyinstrument import Profiler
    except ImportError:
        section.notes.append("pyinstrument is not installed: `pip install -e '.[bench]'`")
        return section
    client = bench_app(opts.workdir).test_client()
    calls = 20 if opts.quick else 200
    epoch = datetime.now(UTC)
    for hook, service_id in SERVICES.items():
        raw = orjson.dumps(synth.request_body(hook, synth.TYPICAL))
        url = f"/cds-services/{service_id}"
        for mode, count in (("cold", max(3, calls // 2)), ("warm", calls)):
            client.post(url, data=raw, content_type="application/json")
            bodies = [
                synth.new_patient_body(hook, synth.TYPICAL, serial, epoch)
                if mode == "cold"  # synth.NEW_PATIENT: no memo can help
                else raw
                for serial in range(1, count + 1)
            ]
            profiler = Profiler(interval=0.0002)
            profiler.start()
            for body in bodies:
                client.post(url, data=body, content_type="application/json")
            profiler.stop()
            name = f"profile-{hook}-{mode}.txt"
            section.files[name] = profiler.output_text(unicode=False, color=False)
            section.notes.append(f"{hook}, {mode}, {count} calls: {name}")
    return section
