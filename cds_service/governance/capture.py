"""Capture for replay: each hook call saved as a scenario fixture (CDS_CAPTURE_DIR).

A capture is a directory in the shape of `fixtures/<scenario>/`:

- request.json: the hook, service and context as received, `capturedAt`, and the prefetch
  the service decided on (as sent or as fetched; a key it could not use is kept as the
  client sent it, or left out when the client sent nothing);
- patient.json: the same resources as one collection Bundle (for `replay --fetch`, the console);
- expected.json: the cards answered, projected as golden files are;
- capture.json: knowledge version, rollout and site-policy values in force, unavailable inputs.

Captures hold patient data: the directory is created owner-only and start-up warns. Nothing
that authorises access (fhirServer, fhirAuthorization, extensions) is written. Files are
written by one background thread (creating four files costs ~8 ms, too much for the hook
call); at most CAPTURE_QUEUE cases wait, beyond that a case is dropped and counted.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from flask import Flask

from cds_service.errors import ConfigError
from cds_service.fhir.scenarios import CAPTURED_AT, project_card
from cds_service.guideline import GuidelineEngine
from cds_service.model.types import HookRequest, HookResult
from fhir_mappings.lazy import LazyResource

log = logging.getLogger(__name__)
# Cases waiting for the writer thread; each holds its call's prefetch (up to MAX_REQUEST_BYTES).
CAPTURE_QUEUE = 64
_Case = tuple[str, HookRequest, HookResult, datetime]


def _plain(value: Any) -> Any:
    """orjson default: a lazily decoded prefetch value as the JSON it came from."""
    if isinstance(value, LazyResource):
        return value.load()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)


def _dump(value: Any) -> bytes:
    return orjson.dumps(value, default=_plain, option=orjson.OPT_INDENT_2) + b"\n"


def _resources(prefetch: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for value in prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            for entry in value.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(resource, dict) and resource.get("resourceType"):
                    yield resource
        elif value.get("resourceType"):
            yield value


def patient_bundle(prefetch: Mapping[str, Any]) -> dict[str, Any]:
    """Every resource of the prefetch once, as the collection Bundle scenarios keep."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in _resources(prefetch):
        key = (str(resource["resourceType"]), str(resource.get("id") or len(seen)))
        seen.setdefault(key, resource)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{kind}-{ident}", "resource": resource}
            for (kind, ident), resource in seen.items()
        ],
    }


class CaptureWriter:
    """Writes one scenario directory per hook call under `root` (owner-only permissions)."""

    def __init__(self, root: Path, engine: GuidelineEngine, capacity: int = CAPTURE_QUEUE) -> None:
        self.root = root
        self.engine = engine
        self.written = 0
        self.failures = 0
        self.dropped = 0
        self._lock = threading.Lock()  # request threads count drops concurrently
        self._queue: queue.Queue[_Case | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name="cds-capture", daemon=True)
        self._thread.start()

    def meta(self, result: HookResult) -> dict[str, Any]:
        knowledge = self.engine.knowledge
        return {
            "knowledgeVersion": knowledge.version,
            "rollout": {k: m for k, m in knowledge.rollout.items() if m != "active"},
            "sitePolicy": {n: s.value for n, s in knowledge.policy.items() if s.overridden},
            "unavailable": dict(result.unavailable),
        }

    def save(self, service_id: str, request: HookRequest, result: HookResult, at: datetime) -> Path:
        """The call as a replayable scenario; written to a temporary name, then renamed."""
        prefetch = dict(result.inputs)
        sent = request.prefetch if isinstance(request.prefetch, Mapping) else {}
        for key in result.unavailable:
            if key in sent:  # what made it unusable (an OperationOutcome, a paged Bundle)
                prefetch[key] = sent[key]
        plain = orjson.loads(_dump(prefetch))
        body = {
            "hook": request.hook,
            "service": service_id,
            CAPTURED_AT: at.isoformat().replace("+00:00", "Z"),
            "context": request.context,
            "prefetch": plain,
        }
        name = f"{request.hook}-{uuid.uuid4().hex[:16]}"
        staging = self.root / f".{name}.tmp"
        staging.mkdir(mode=0o700)
        files = {
            "request.json": body,
            "patient.json": patient_bundle(plain),
            "expected.json": [project_card(card) for card in result.cards],
            "capture.json": self.meta(result),
        }
        for filename, content in files.items():
            path = staging / filename
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(_dump(content))
        final = self.root / name
        staging.rename(final)
        self.written += 1
        return final

    def __call__(
        self, service_id: str, request: HookRequest, result: HookResult, at: datetime
    ) -> None:
        """Queue the case for the writer thread; never blocks or fails the hook call."""
        try:
            self._queue.put_nowait((service_id, request, result, at))
        except queue.Full:
            with self._lock:
                self.dropped += 1
                total = self.dropped
            log.error("capture queue full: case dropped (total %d)", total)

    def _run(self) -> None:
        while True:
            case = self._queue.get()
            try:
                if case is None:
                    return
                self.save(*case)
            except (OSError, TypeError, ValueError) as exc:
                self.failures += 1
                log.error("capture not written: %s", type(exc).__name__)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued case is written (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread (shutdown)."""
        if not self._thread.is_alive():
            return
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout=1.0)


def init_app(app: Flask) -> CaptureWriter | None:
    """With CDS_CAPTURE_DIR set: check the directory, warn loudly, install the writer."""
    raw = str(app.config.get("CAPTURE_DIR") or "")
    if not raw:
        return None
    root = Path(raw)
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = root / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"CDS_CAPTURE_DIR {raw}: cannot write there ({exc.strerror})") from None
    log.warning(
        "CAPTURE ON (CDS_CAPTURE_DIR=%s): every hook call is saved with the PATIENT DATA it "
        "carried. Keep the directory access-controlled, de-identify before sharing "
        "(cds-service capture deidentify), and turn capture off when done.",
        raw,
    )
    writer = CaptureWriter(root, app.extensions["cds_engine"])
    app.extensions["cds_capture"] = writer
    atexit.register(writer.close)
    return writer
