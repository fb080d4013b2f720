"""The application factory (Flask tutorial style): settings, knowledge, extensions, routes."""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Flask

from cds_service import console, http_errors, persistence, security, web
from cds_service.config import load_settings
from cds_service.fhir import prefetch as fhir_prefetch
from cds_service.governance import capture
from cds_service.guideline import load_engine
from cds_service.hooks import routes
from cds_service.hooks.routes import CARD_VERDICTS
from cds_service.hooks.services import build_registry
from cds_service.openapi import build_openapi
from cds_service.ops import logs, metrics, readiness
from fhir_mappings import load_terminology

log = logging.getLogger("cds_service")


def tune_gc(gen0_threshold: int) -> None:
    """Collect the young generation every `gen0_threshold` allocations (0: Python's default).

    A prefetch of 10,000 resources allocates about a million containers; with the default
    threshold the collector runs thousands of times and rescans the growing heap.
    """
    if gen0_threshold > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then CDS_* environment, then `config`; fail loudly if invalid."""
    settings = load_settings(config)
    app = Flask("cds_service")
    app.config.update(settings)
    # Werkzeug refuses larger bodies before we read them (413).
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_REQUEST_BYTES"]
    app.extensions["cds_hook_listeners"] = []
    # First: its after_request runs last, so the access line sees every final status.
    logs.init_app(app)
    tune_gc(int(settings["GC_GEN0_THRESHOLD"]))

    load_terminology()
    engine = load_engine(settings["SITE_POLICY_FILE"] or None)
    store = persistence.init_app(app)
    registry = build_registry(engine, snoozes=store.snoozed)  # overridden cautions snooze
    app.extensions["cds_engine"] = engine
    app.extensions["cds_registry"] = registry
    fhir_prefetch.init_app(app)  # the prefetch policy: as sent, else fetched (docs/fhir-access.md)
    capture.init_app(app)  # CDS_CAPTURE_DIR: off unless set
    app.extensions["cds_openapi"] = orjson.dumps(build_openapi(registry, engine.version, settings))

    http_errors.init_app(app)
    web.init_app(app)
    security.init_app(app)
    app.register_blueprint(routes.bp)
    if settings["CONSOLE"]:
        console.init_app(app)  # after security: it trusts the console's issuer in-process
    memos = {"card_check": CARD_VERDICTS}
    metrics.init_app(app, memos)
    readiness.init_app(app)
    log.info("knowledge %s loaded; profile %s", engine.version, settings["PROFILE"])
    return app
