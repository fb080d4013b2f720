"""GET /readyz: named checks (knowledge, database, Redis, ...) run together, each bounded.

An extension adds its own with `register_check(app, name, probe)` in its init_app: the probe
returns nothing (ready) or raises (not ready; the exception's type is shown, never its text,
which may hold a URL with a password).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flask import Flask
from sqlalchemy import text

Probe = Callable[[], None]
_CHECKS = "cds_ready_checks"
# Probes of every app in the process share these threads; a probe stuck past the timeout
# keeps its thread until the driver's own timeout ends it, so there are a few spare.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cds-readyz")


def register_check(app: Flask, name: str, probe: Probe) -> None:
    """Add a named readiness check; /readyz lists it and answers 503 while it fails."""
    app.extensions.setdefault(_CHECKS, {})[name] = probe


def _timed(probe: Probe) -> float:
    started = time.perf_counter()
    probe()
    return (time.perf_counter() - started) * 1000.0


def run_checks(app: Flask) -> tuple[bool, list[dict[str, Any]]]:
    """Every check at once, all within READY_TIMEOUT_SECONDS: (all ready, one entry each)."""
    timeout = float(app.config["READY_TIMEOUT_SECONDS"])
    checks: dict[str, Probe] = app.extensions.get(_CHECKS, {})
    futures = {name: _POOL.submit(_timed, probe) for name, probe in checks.items()}
    deadline = time.monotonic() + timeout
    results = []
    for name, future in futures.items():
        entry: dict[str, Any] = {"name": name}
        try:
            entry["durationMs"] = round(future.result(max(0.0, deadline - time.monotonic())), 1)
            entry["status"] = "ok"
        except FutureTimeout:
            entry.update(status="failed", error=f"no answer within {timeout:g} s")
        except Exception as exc:
            entry.update(status="failed", error=type(exc).__name__)
        results.append(entry)
    return all(e["status"] == "ok" for e in results), results


def database_probe(app: Flask) -> Probe:
    """SELECT 1 on the store's engine (a pooled connection, tested before use)."""

    def probe() -> None:
        store = app.extensions["cds_store"]
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return probe


def redis_probe(url: str, timeout: float) -> Probe:
    """PING on its own client with the readiness timeout (the app's clients wait longer)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def probe() -> None:
        client.ping()

    return probe


def knowledge_probe(app: Flask) -> Probe:
    def probe() -> None:
        if app.extensions.get("cds_engine") is None or not list(
            app.extensions.get("cds_registry", [])
        ):
            raise LookupError("knowledge not loaded")

    return probe


def init_app(app: Flask) -> None:
    """The built-in checks: knowledge, the database and, when configured, Redis."""
    register_check(app, "knowledge", knowledge_probe(app))
    if "cds_store" in app.extensions:
        register_check(app, "database", database_probe(app))
    if app.config.get("REDIS_URL"):
        register_check(
            app, "redis", redis_probe(app.config["REDIS_URL"], app.config["READY_TIMEOUT_SECONDS"])
        )
