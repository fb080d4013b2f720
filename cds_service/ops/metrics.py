"""GET /metrics in the Prometheus text format (prometheus_client, multiprocess under serve).

prometheus_client picks its multiprocess mode when it is first imported, from
PROMETHEUS_MULTIPROC_DIR: `cds-service serve` sets that variable before the app is built,
so this module imports the library only when the instruments are made.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from flask import Blueprint, Flask, Response, current_app, request

from cds_service.model.events import HookRecord

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram

bp = Blueprint("ops_metrics", __name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FEEDBACK_RULE = "/cds-services/<service_id>/feedback"
# Hook latency buckets (seconds): the 100 ms budget of an EHR's hook call sits in the middle.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Instruments:
    """Every metric the service exports (names are the public interface: docs/operations.md)."""

    requests: Counter
    hook_seconds: Histogram
    cards: Counter
    prefetch: Counter
    auth_refused: Counter
    feedback: Counter
    feedback_requests: Counter
    audit_queue: Gauge
    audit_written: Counter
    audit_dropped: Counter
    audit_write_errors: Counter
    audit_lost: Counter
    memo_lookups: Counter


@cache
def instruments() -> Instruments:
    """Made once per process, on first use (after serve has set PROMETHEUS_MULTIPROC_DIR)."""
    from prometheus_client import Counter, Gauge, Histogram

    return Instruments(
        requests=Counter(
            "cds_http_requests", "HTTP requests by route and status", ["route", "status"]
        ),
        hook_seconds=Histogram(
            "cds_hook_duration_seconds",
            "Hook calls answered, by service: time to build the answer",
            ["service"],
            buckets=_LATENCY_BUCKETS,
        ),
        cards=Counter(
            "cds_cards", "Cards returned, by recommendation id", ["recommendation", "indicator"]
        ),
        prefetch=Counter(
            "cds_prefetch_keys",
            "Prefetch keys by outcome and FHIR host (none: no fhirServer; other: not allowed)",
            ["host", "outcome"],
        ),
        auth_refused=Counter("cds_auth_refusals", "Calls refused a JWT, by reason", ["reason"]),
        feedback=Counter(
            "cds_feedback_items", "Feedback items stored or ignored as duplicates", ["outcome"]
        ),
        feedback_requests=Counter(
            "cds_feedback_requests",
            "Feedback requests stored or refused (any status but 200)",
            ["outcome"],
        ),
        audit_queue=Gauge(
            "cds_audit_queue_depth",
            "Audit records queued or being written",
            multiprocess_mode="livesum",
        ),
        audit_written=Counter("cds_audit_records_written", "Audit records written"),
        audit_dropped=Counter("cds_audit_records_dropped", "Audit records lost (queue full)"),
        audit_write_errors=Counter("cds_audit_write_errors", "Failed audit write attempts"),
        audit_lost=Counter(
            "cds_audit_records_lost",
            "Audit records a killed process had queued and never wrote (found at the next start)",
        ),
        memo_lookups=Counter(
            "cds_memo_lookups", "Memo look-ups by memo and result (hit, miss)", ["memo", "result"]
        ),
    )


def enabled() -> bool:
    """Whether the running app exports metrics (a no-op outside an app context)."""
    try:
        return bool(current_app.config.get("METRICS"))
    except RuntimeError:
        return False


def prefetch_outcomes(fhir_server: str | None, allowed: bool, outcomes: dict[str, int]) -> None:
    """Count prefetch keys by outcome (prefetched, fetched, unavailable, a failure reason)."""
    if not enabled() or not outcomes:
        return
    # A refused server is never parsed: its URL may be one urlsplit raises on ("http://[8Fb]").
    if not fhir_server:
        host = "none"
    else:
        host = (urlsplit(fhir_server).netloc or "none") if allowed else "other"
    counter = instruments().prefetch
    for outcome, count in outcomes.items():
        counter.labels(host=host, outcome=outcome).inc(count)


def auth_refused(reason: str) -> None:
    if enabled():
        instruments().auth_refused.labels(reason=reason).inc()


class _Deltas:
    """Per-process counters kept by plain ints elsewhere (memos, the audit writer), exported
    as Prometheus counters by adding what they grew by since the last sync."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[Any, int] = {}

    def add(self, key: Any, current: int, inc: Callable[[int], None]) -> None:
        with self._lock:
            before = self._seen.get(key, 0)
            self._seen[key] = current
        grown = current - before if current >= before else current  # reset: counted anew
        if grown > 0:
            inc(grown)


_DELTAS = _Deltas()


def _sync_memos(memos: dict[str, Any]) -> None:
    lookups = instruments().memo_lookups
    for name, memo in memos.items():
        for result in ("hit", "miss"):
            count = memo.hits if result == "hit" else memo.misses
            _DELTAS.add((name, result), count, lookups.labels(memo=name, result=result).inc)


def _sync_audit(app: Flask) -> None:
    store = app.extensions.get("cds_store")
    writer = getattr(store, "audit", None)
    if writer is None:
        return
    tools = instruments()
    stats = writer.stats
    _DELTAS.add((id(writer), "written"), stats.written, tools.audit_written.inc)
    _DELTAS.add((id(writer), "dropped"), stats.dropped, tools.audit_dropped.inc)
    _DELTAS.add((id(writer), "errors"), stats.write_errors, tools.audit_write_errors.inc)
    _DELTAS.add((id(writer), "lost"), stats.lost_before_start, tools.audit_lost.inc)
    tools.audit_queue.set(writer.depth)


def sync(app: Flask) -> None:
    """Bring the counters kept outside Prometheus up to date (each hook call and scrape)."""
    _sync_memos(app.extensions.get("cds_memos", {}))
    _sync_audit(app)


def _on_hook(record: HookRecord) -> None:
    tools = instruments()
    tools.hook_seconds.labels(service=record.service_id).observe(record.duration_ms / 1000.0)
    for card, rec_id in zip(record.cards, record.recommendation_ids, strict=False):
        indicator = str(card.get("indicator") or "info")[:16]
        tools.cards.labels(recommendation=rec_id or "none", indicator=indicator).inc()
    sync(current_app._get_current_object())  # type: ignore[attr-defined]


def _on_response(response: Response) -> Response:
    rule = request.url_rule
    route = rule.rule if rule is not None else "(no route)"
    tools = instruments()
    tools.requests.labels(route=route, status=str(response.status_code)).inc()
    if route == FEEDBACK_RULE:
        _count_feedback(response)
    return response


def _count_feedback(response: Response) -> None:
    tools = instruments()
    stored = response.status_code == 200
    tools.feedback_requests.labels(outcome="stored" if stored else "refused").inc()
    if not stored:
        return
    counter = tools.feedback
    try:
        body = orjson.loads(response.get_data())
    except orjson.JSONDecodeError:
        return
    counter.labels(outcome="stored").inc(int(body.get("stored") or 0))
    counter.labels(outcome="duplicate").inc(int(body.get("duplicates") or 0))


# Reached without a JWT (security.flask_auth.PUBLIC_ENDPOINTS): keep it from the public by
# network policy or a proxy rule (docs/operations.md), or turn it off with CDS_METRICS=false.
@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus exposition: every worker's samples when serve runs several."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    sync(current_app._get_current_object())  # type: ignore[attr-defined]
    registry: Any = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")


def init_app(app: Flask, memos: dict[str, Any]) -> None:
    """GET /metrics and the counting hooks, unless CDS_METRICS is off."""
    if not app.config["METRICS"]:
        return
    instruments()
    app.extensions["cds_memos"] = memos
    app.after_request(_on_response)
    app.extensions["cds_hook_listeners"].append(_on_hook)
    app.register_blueprint(bp)
