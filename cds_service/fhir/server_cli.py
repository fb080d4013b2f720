"""`cds-service fhir-server`: fixture patients over FHIR R4 REST, for testers and the sandbox."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from werkzeug.serving import make_server

from cds_service.fhir.fixture_server import (
    FAULT_MODES,
    Faults,
    QuietRequestHandler,
    create_fixture_wsgi,
    load_stores,
)
from cds_service.fhir.store import SEARCH_TYPES

SANDBOX = "https://sandbox.cds-hooks.org/"


def _types(text: str) -> frozenset[str]:
    types = frozenset(t.strip() for t in text.split(",") if t.strip())
    unknown = types - set(SEARCH_TYPES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown resource types: {', '.join(sorted(unknown))}")
    return types


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("the fault rate is between 0 and 1")
    return value


def _run(args: argparse.Namespace) -> int:
    stores = load_stores(args.fixtures, args.bundle)
    if not stores:
        print(f"no fixtures found under {args.fixtures!r} and no --bundle given")
        return 2
    faults = Faults(
        mode=args.fault,
        rate=args.fault_rate,
        latency_ms=args.latency_ms,
        only_types=args.fault_on,
        timeout_sleep=args.timeout_sleep,
        retry_after=args.retry_after,
    )
    app = create_fixture_wsgi(stores, faults, required_token=args.require_token)
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=QuietRequestHandler
    )
    base = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{server.port}"
    print(f"fixture FHIR server (R4): {base}/metadata  (all patients)")
    for name, store in stores.items():
        patients = [r["id"] for r in store.by_type.get("Patient", [])]
        print(f"  {base}/{name}  patients: {', '.join(patients) or '-'}")
    if faults.mode or faults.latency_ms:
        print(f"faults: {faults.mode or 'none'} rate {faults.rate}, latency {faults.latency_ms} ms")
    first = next(iter(stores))
    example = quote(f"{base}/{first}", safe="")
    print(f"CDS Hooks Sandbox: {SANDBOX}?fhirServiceUrl={example}&patientId=<id>", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fhir-server", help="serve fixture patients over FHIR R4 REST (with fault injection)"
    )
    parser.add_argument("--fixtures", default="fixtures", help="directory of scenario fixtures")
    parser.add_argument(
        "--bundle", action="append", default=[], help="extra FHIR Bundle file (e.g. Synthea)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=int, default=0, help="delay every data request")
    parser.add_argument("--fault", choices=FAULT_MODES, default=None)
    parser.add_argument("--fault-rate", type=_rate, default=1.0, help="share of requests faulted")
    parser.add_argument(
        "--fault-on", type=_types, default=frozenset(), help="only these types, e.g. Observation"
    )
    parser.add_argument("--timeout-sleep", type=float, default=10.0, help="seconds, fault timeout")
    parser.add_argument("--retry-after", type=int, default=1, help="seconds, fault 429")
    parser.add_argument("--require-token", default=None, help="demand this bearer token")
    parser.set_defaults(func=_run)
