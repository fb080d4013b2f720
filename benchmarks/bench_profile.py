"""A pyinstrument profile of the typical request (warm and cold), written beside the report."""

from __future__ import annotations

import orjson

from benchmarks import synth
from benchmarks.common import SERVICES, Options, Section, bench_app
from fhir_mappings.state import forget_memos


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
    for hook, service_id in SERVICES.items():
        raw = orjson.dumps(synth.request_body(hook, synth.TYPICAL))
        url = f"/cds-services/{service_id}"
        for mode, count in (("warm", calls), ("cold", max(3, calls // 10))):
            client.post(url, data=raw, content_type="application/json")
            profiler = Profiler(interval=0.0002)
            profiler.start()
            for _ in range(count):
                if mode == "cold":
                    forget_memos()  # a record this worker has never seen
                client.post(url, data=raw, content_type="application/json")
            profiler.stop()
            name = f"profile-{hook}-{mode}.txt"
            section.files[name] = profiler.output_text(unicode=False, color=False)
            section.notes.append(f"{hook}, {mode}, {count} calls: {name}")
    return section
