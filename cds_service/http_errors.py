"""The HTTP edge of errors: every failure becomes one JSON shape with the right status."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from cds_service.errors import CDSError

log = logging.getLogger(__name__)


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """`{"error": {"status", "code", "message", "details"?}}` with that HTTP status."""
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    return response


def _domain(exc: CDSError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details)


def _http(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    response = error_response(status, code, exc.description or exc.name or "error")
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


def _unexpected(exc: Exception) -> Response:
    # The message may hold patient data: log the type only; never show a trace to clients.
    log.error("unhandled %s while serving a request", type(exc).__name__, exc_info=False)
    return error_response(500, "internal_error", "the service failed to handle the request")


def init_app(app: Flask) -> None:
    """Register the one JSON error shape for domain, HTTP and unexpected errors."""
    app.register_error_handler(CDSError, _domain)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)
