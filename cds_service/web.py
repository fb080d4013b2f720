"""Cross-cutting HTTP behaviour: CORS (spec 'Cross-Origin Resource Sharing') and health."""

from __future__ import annotations

import orjson
from flask import Blueprint, Flask, Response, current_app, request

from cds_service.ops.readiness import run_checks
from cds_service.version import __version__

bp = Blueprint("web", __name__)


_HEALTH = orjson.dumps({"status": "ok", "version": __version__})


@bp.get("/healthz")
def healthz() -> Response:
    """Alive (a liveness probe): the process answers; it checks nothing else."""
    return Response(_HEALTH, mimetype="application/json")


@bp.get("/readyz")
def readyz() -> Response:
    """Ready: every registered check passes (knowledge, database, Redis when configured).

    503 while one fails; both answers list each check with its status.
    """
    ready, checks = run_checks(current_app._get_current_object())  # type: ignore[attr-defined]
    engine = current_app.extensions.get("cds_engine")
    body = {
        "status": "ready" if ready else "not_ready",
        "version": __version__,
        "knowledgeVersion": engine.version if engine is not None else None,
        "checks": checks,
    }
    if engine is not None:  # each recommendation's rollout mode (site policy: active/silent/off)
        knowledge = engine.knowledge
        body["rollout"] = {rec_id: knowledge.mode(rec_id) for rec_id in knowledge.recommendations}
    if not ready:  # the one error shape too, for clients that look for "error"
        failed = ", ".join(c["name"] for c in checks if c["status"] != "ok")
        body["error"] = {"status": 503, "code": "not_ready", "message": f"not ready: {failed}"}
    return Response(orjson.dumps(body), status=200 if ready else 503, mimetype="application/json")


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
