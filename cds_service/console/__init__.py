"""The tester's console: fire hooks at fixture patients and see cards as an EHR would.

Registered by create_app only when CONSOLE is true (the local profile); never in production.
"""

from __future__ import annotations

import logging

from flask import Flask

from cds_service.console.issuer import TOKEN_LIFETIME_SECONDS, load_console_issuer, trust_in_process
from cds_service.console.views import bp

log = logging.getLogger("cds_service.console")


def _terminology() -> object | None:
    """The mappings' value sets, for the drug picker; None when they cannot be loaded."""
    try:
        from fhir_mappings import load_terminology

        return load_terminology()
    except (ImportError, ValueError) as exc:
        log.warning("console: drug picker falls back to the fixtures' drugs (%s)", exc)
        return None


def init_app(app: Flask) -> None:
    """Mount /console and trust its local issuer in this process (call after security)."""
    issuer = load_console_issuer(app.config["DATA_DIR"])
    app.extensions["cds_console_issuer"] = issuer
    app.extensions["cds_console_token_lifetime"] = TOKEN_LIFETIME_SECONDS
    app.extensions["cds_console_terminology"] = _terminology()
    trust_in_process(app, issuer)
    app.register_blueprint(bp)
