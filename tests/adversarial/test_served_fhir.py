"""A drip-feeding and a redirecting FHIR server beside a healthy one.

The service fetches prefetch from the FHIR server each call names. One bad server must not
hold fetch threads past the hook's budget, nor make calls naming another server fail.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from benchmarks import synth
from tests.adversarial.support import HOST, PATIENT_VIEW, Served, request, serve, wait_until

HOOK = f"/cds-services/{PATIENT_VIEW}"
# The hook's fetch budget: the healthy server's fetches must fit in it while the drip calls run,
# on a loaded 2-CPU CI machine too (at 1 s a healthy call ran out of it once in a full run).
BUDGET = 2.0


class FhirStub(ThreadingHTTPServer):
    """A loopback FHIR server whose behaviour is one of healthy, drip or redirect."""

    daemon_threads = True

    def __init__(self, mode: str, redirect_to: str = "") -> None:
        super().__init__((HOST, 0), _Handler)
        self.mode = mode
        self.redirect_to = redirect_to
        self.lock = threading.Lock()
        self.requests = 0
        self.open = 0
        self.stop_drip = threading.Event()

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/fhir"

    def count(self, delta_open: int, new_request: bool = False) -> None:
        with self.lock:
            self.open += delta_open
            self.requests += int(new_request)


class _Handler(BaseHTTPRequestHandler):
    server: FhirStub

    def log_message(self, *_: Any) -> None:
        """Quiet: the stub's request lines would bury the test's own output."""

    def do_GET(self) -> None:
        self.server.count(+1, new_request=True)
        try:
            getattr(self, f"_{self.server.mode}")()
        finally:
            self.server.count(-1)

    def _send_json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _healthy(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/fhir/Patient/"):
            patient = synth.patient()
            patient["id"] = path.rsplit("/", 1)[1]
            self._send_json(patient)
        else:
            self._send_json({"resourceType": "Bundle", "type": "searchset", "total": 0})

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.flush()
        for _ in range(150):  # 30 s at most, unless the client hangs up
            if self.server.stop_drip.wait(0.2):
                return
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                return

    def _redirect(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.server.redirect_to + self.path.removeprefix("/fhir"))
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def stubs() -> Iterator[dict[str, FhirStub]]:
    healthy = FhirStub("healthy")
    servers = {
        "healthy": healthy,
        "drip": FhirStub("drip"),
        "redirect": FhirStub("redirect", redirect_to=healthy.base),
    }
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for thread in threads:
        thread.start()
    yield servers
    servers["drip"].stop_drip.set()
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = {
        "CDS_FHIR_ALLOW_LOOPBACK_HTTP": "true",
        "CDS_FHIR_SERVER_ALLOWLIST": f"http://{HOST}",
        "CDS_FHIR_BUDGET_SECONDS": str(BUDGET),
        "CDS_FHIR_BREAKER_FAILURES": "3",
        "CDS_FHIR_BREAKER_SECONDS": "120",
    }
    with serve(tmp_path_factory.mktemp("fhir"), env) as running:
        yield running


def fetching_body(fhir_server: str) -> dict[str, Any]:
    """A patient-view call with no prefetch: everything is fetched from `fhir_server`."""
    body = synth.request_body("patient-view", 10)
    body.pop("prefetch")
    body["fhirServer"] = fhir_server
    return body


def call(served: Served, fhir_server: str) -> tuple[int, float, Any]:
    started = time.monotonic()
    status, _, body = request(
        served.url(HOOK), fetching_body(fhir_server), headers=served.auth(HOOK), timeout=30
    )
    return status, time.monotonic() - started, body


def test_the_healthy_server_alone_gives_cards(served: Served, stubs: dict[str, FhirStub]) -> None:
    status, _, body = call(served, stubs["healthy"].base)
    assert status == 200, body


def test_a_drip_feeding_server_does_not_starve_calls_naming_another(
    served: Served, stubs: dict[str, FhirStub]
) -> None:
    drip, healthy = stubs["drip"], stubs["healthy"]
    with ThreadPoolExecutor(max_workers=20) as pool:
        dripping = [pool.submit(call, served, drip.base) for _ in range(12)]
        time.sleep(0.3)
        for _ in range(5):
            status, seconds, body = call(served, healthy.base)
            assert status == 200, body
            assert seconds < BUDGET + 4
        results = [future.result(timeout=60) for future in dripping]
    for status, seconds, body in results:
        assert status == 412, body  # patient and conditions are required
        assert seconds < BUDGET + 4, "a call waits for its budget, not for the drip"
    # The budget is enforced on the connection: the drip server sees every one closed.
    wait_until(lambda: drip.open == 0, 10)


def test_the_breaker_stops_calling_a_server_that_keeps_failing(
    served: Served, stubs: dict[str, FhirStub]
) -> None:
    drip = stubs["drip"]
    # Each worker has its own breaker, and any worker may take a call: call until 12 calls in
    # a row reached nothing (both breakers open; a worker missed 12 times running is
    # unlikely), at most 40 calls. Four calls were not always enough: one worker can take all.
    quiet, before = 0, drip.requests
    for _ in range(40):
        call(served, drip.base)
        quiet, before = (quiet + 1, before) if drip.requests == before else (0, drip.requests)
        if quiet == 12:
            break
    assert quiet == 12, "the breakers did not open"
    for _ in range(6):
        status, seconds, body = call(served, drip.base)
        assert status == 412, body
        assert seconds < BUDGET + 2
    assert drip.requests == before, "an open breaker sends nothing to the failing server"
    status, _, body = call(served, stubs["healthy"].base)
    assert status == 200, body


def test_a_redirect_to_another_server_is_not_followed(
    served: Served, stubs: dict[str, FhirStub]
) -> None:
    healthy = stubs["healthy"]
    before = healthy.requests
    status, _, body = call(served, stubs["redirect"].base)
    assert status == 412, body
    assert "outside the allowed server" in json.dumps(body)
    assert healthy.requests == before, "the redirect target was never contacted"
