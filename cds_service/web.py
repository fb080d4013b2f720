"""Cross-cutting HTTP behaviour: CORS (spec 'Cross-Origin Resource Sharing') and health."""

from __future__ import annotations

import orjson
from flask import Blueprint, Flask, Response, current_app, request

from cds_service.hooks.http_errors import error_response

bp = Blueprint("web", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: the process answers."""
    return Response('{"status":"ok"}', mimetype="application/json")


@bp.get("/readyz")
def readyz() -> Response:
    """Ready: knowledge loaded and services registered."""
    engine = current_app.extensions.get("cds_engine")
    if engine is None or not list(current_app.extensions.get("cds_registry", [])):
        return error_response(503, "not_ready", "knowledge not loaded")
    body = {"status": "ready", "knowledgeVersion": engine.version}
    return Response(orjson.dumps(body), mimetype="application/json")


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document, generated at start-up from the marshmallow schemas."""
    return Response(current_app.extensions["cds_openapi"], mimetype="application/json")


def _cors(response: Response) -> Response:
    # Browser clients (the CDS Hooks Sandbox) call from another origin with a bearer JWT,
    # not cookies, so a wildcard origin is safe and what the spec asks for.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
    response.headers["Access-Control-Max-Age"] = "600"
    if request.method == "OPTIONS":
        response.status_code = 204
        response.set_data(b"")
    return response


def init_app(app: Flask) -> None:
    """Health routes and CORS on every response, including errors and preflights."""
    app.register_blueprint(bp)
    app.after_request(_cors)
