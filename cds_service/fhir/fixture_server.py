"""Fixture FHIR server: fixture patients over FHIR R4 REST, with injectable latency and faults."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from flask import Flask, Response, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import WSGIRequestHandler, make_server

from cds_service.fhir.search import SearchError
from cds_service.fhir.store import SEARCH_TYPES, FixtureStore

FHIR_JSON = "application/fhir+json"
FAULT_MODES = ("timeout", "5xx", "429", "malformed")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass
class Faults:
    """Latency on every data request; a fault on a deterministic share (`rate`) of them."""

    mode: str | None = None
    rate: float = 1.0
    latency_ms: int = 0
    only_types: frozenset[str] = frozenset()  # empty: every resource type
    timeout_sleep: float = 5.0
    retry_after: int = 1
    _count: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def should_fault(self, resource_type: str) -> bool:
        """Faults are spread evenly (rate 0.5: the 1st, 3rd, 5th... request), not at random."""
        if self.mode is None or (self.only_types and resource_type not in self.only_types):
            return False
        with self._lock:
            self._count += 1
            n = self._count
        return math.ceil(n * self.rate) > math.ceil((n - 1) * self.rate)


def outcome(status: int, code: str, text: str) -> Response:
    """An OperationOutcome response."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return fhir_response(body, status)


def fhir_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype=FHIR_JSON)


def capability_statement(types: Iterable[str]) -> dict[str, Any]:
    """The CapabilityStatement for /metadata (FHIR R4 RESTful API)."""
    params = [
        {"name": name, "type": kind}
        for name, kind in (
            ("patient", "reference"),
            ("code", "token"),
            ("status", "token"),
            ("clinical-status", "token"),
            ("date", "date"),
            ("_count", "number"),
            ("_sort", "string"),
        )
    ]
    resources = [
        {
            "type": rtype,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": params if rtype != "Patient" else [{"name": "_id", "type": "token"}],
        }
        for rtype in sorted(types)
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "software": {"name": "cds-service fixture FHIR server"},
        "rest": [{"mode": "server", "resource": resources}],
    }


def _page(
    store_hits: list[dict[str, Any]], rtype: str, params: Mapping[str, list[str]], base: str
) -> dict[str, Any]:
    """One searchset page, with a `next` link (GET, same server) while more remain."""
    try:
        count = min(int(params.get("_count", [DEFAULT_PAGE_SIZE])[0]), MAX_PAGE_SIZE)
        offset = max(int(params.get("_offset", ["0"])[0]), 0)
    except ValueError as exc:
        raise SearchError("_count and _offset must be integers") from exc
    count = max(count, 0)
    query = [(k, v) for k, values in params.items() if k != "_offset" for v in values]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(store_hits),
        "link": [{"relation": "self", "url": f"{base}{rtype}?{urlencode(query)}"}],
    }
    window = store_hits[offset : offset + count]
    if count and offset + count < len(store_hits):
        next_query = urlencode([*query, ("_offset", str(offset + count))])
        bundle["link"].append({"relation": "next", "url": f"{base}{rtype}?{next_query}"})
    if window:
        bundle["entry"] = [
            {
                "fullUrl": f"{base}{rtype}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in window
        ]
    return bundle


def create_fhir_app(
    store: FixtureStore,
    faults: Faults | None = None,
    *,
    required_token: str | None = None,
) -> Flask:
    """The fixture server as a Flask app (R4 read, search via GET and POST _search, CORS)."""
    app = Flask("cds_fixture_fhir")
    faults = faults or Faults()
    app.extensions["fixture_faults"] = faults
    # "GET /Observation" per data request, for tests and benchmarks (bounded: long runs).
    seen: deque[str] = deque(maxlen=10000)
    app.extensions["fixture_requests"] = seen

    @app.after_request
    def cors(response: Response) -> Response:
        # The CDS Hooks Sandbox reads this server from the browser.
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization, Accept"
        return response

    @app.before_request
    def inject() -> Response | None:
        if request.method == "OPTIONS" or request.path == "/metadata":
            return None
        seen.append(f"{request.method} {request.path}")
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if required_token and request.headers.get("Authorization") != f"Bearer {required_token}":
            return outcome(401, "login", "a valid bearer token is required")
        rtype = request.path.strip("/").split("/", 1)[0]
        if not faults.should_fault(rtype):
            return None
        if faults.mode == "timeout":
            time.sleep(faults.timeout_sleep)
            return outcome(504, "timeout", "injected timeout")
        if faults.mode == "5xx":
            return outcome(503, "transient", "injected server error")
        if faults.mode == "429":
            response = outcome(429, "throttled", "injected rate limit")
            response.headers["Retry-After"] = str(faults.retry_after)
            return response
        return Response(b'{"resourceType": "Bundle", "entry": [{', mimetype=FHIR_JSON)

    @app.get("/metadata")
    def metadata() -> Response:
        return fhir_response(capability_statement(SEARCH_TYPES))

    @app.get("/<rtype>/<rid>")
    def read(rtype: str, rid: str) -> Response:
        resource = store.read(rtype, rid)
        if resource is None:
            return outcome(404, "not-found", f"{rtype}/{rid} is not known")
        return fhir_response(resource)

    @app.route("/<rtype>", methods=["GET"])
    @app.route("/<rtype>/_search", methods=["POST"])
    def search(rtype: str) -> Response:
        params = request.args.to_dict(flat=False)
        if request.method == "POST":
            for key, values in request.form.to_dict(flat=False).items():
                params.setdefault(key, []).extend(values)
        if rtype not in SEARCH_TYPES:
            return outcome(404, "not-supported", f"search on {rtype} is not supported")
        try:
            hits = store.search(rtype, params)
            return fhir_response(_page(hits, rtype, params, request.url_root))
        except SearchError as exc:
            return outcome(400, "not-supported", str(exc))

    return app


class QuietRequestHandler(WSGIRequestHandler):
    """No access log: request lines carry patient ids."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@contextmanager
def running_server(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` on a threaded werkzeug server in a background thread; yield its base URL."""
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="fixture-fhir",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def load_stores(
    fixtures_dir: str | Path | None, bundles: Iterable[str | Path] = ()
) -> dict[str, FixtureStore]:
    """One store per fixtures/<scenario>/patient.json and per extra bundle file (by file stem)."""
    paths: dict[str, Path] = {}
    if fixtures_dir:
        paths.update((p.parent.name, p) for p in sorted(Path(fixtures_dir).glob("*/patient.json")))
    paths.update((Path(p).stem, Path(p)) for p in bundles)
    now = datetime.now(UTC)
    return {name: FixtureStore.from_files([path], now) for name, path in paths.items()}


def load_store(fixtures_dir: str | Path | None, bundles: Iterable[str | Path] = ()) -> FixtureStore:
    """All fixture patients and extra bundles in one store (the first of duplicate ids wins)."""
    return FixtureStore.merged(load_stores(fixtures_dir, bundles).values())


def create_fixture_wsgi(
    stores: Mapping[str, FixtureStore], faults: Faults | None = None, **options: Any
) -> DispatcherMiddleware:
    """All patients at `/`, and each scenario (or bundle) alone at `/<name>` as its own base.

    Scenario fixtures share patient ids (fx-patient), so the per-scenario base is the one to
    point a client at; the root serves the union for patients with distinct ids.
    """
    faults = faults or Faults()
    root = create_fhir_app(FixtureStore.merged(stores.values()), faults, **options)
    mounts = {
        f"/{name}": create_fhir_app(store, faults, **options) for name, store in stores.items()
    }
    return DispatcherMiddleware(root, mounts)  # type: ignore[arg-type]
