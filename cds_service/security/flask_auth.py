"""The HTTP edge of authentication: which requests need a JWT, and for which `aud`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Request, Response, current_app, g, request

from cds_service.errors import ServiceUnavailable, Unauthorized
from cds_service.ops import metrics
from cds_service.security.reasons import reason_class
from cds_service.security.replay import ReplayStoreUnavailable
from cds_service.security.verifier import AuthFailure, TokenVerifier

log = logging.getLogger("cds_service.security")

# Endpoints a client reaches without a JWT: health probes and the API description.
# /metrics is kept from the public by the network (docs/operations.md), not by a JWT.
PUBLIC_ENDPOINTS = frozenset({"web.healthz", "web.readyz", "web.openapi", "ops_metrics.metrics"})
_PUBLIC_ATTR = "_cds_public"
F = TypeVar("F", bound=Callable[..., Any])


def public(view: F) -> F:
    """Mark a view (a console page or asset) as reachable without a JWT."""
    setattr(view, _PUBLIC_ATTR, True)
    return view


def is_guarded(req: Request) -> bool:
    """Default-deny: everything needs a JWT except preflights, probes and static assets."""
    if req.method == "OPTIONS":
        return False
    endpoint = req.endpoint
    if endpoint is None:
        return True
    if endpoint in PUBLIC_ENDPOINTS or endpoint == "static" or endpoint.endswith(".static"):
        return False
    view = current_app.view_functions.get(endpoint)
    return not getattr(view, _PUBLIC_ATTR, False)


def audience_for(req: Request) -> str:
    """Spec: `aud` is the URL called; behind a proxy, the configured public base URL."""
    base = str(current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return f"{base}{req.path}" if base else req.base_url


def _authenticate() -> None:
    if not is_guarded(request):
        return
    verifier: TokenVerifier = current_app.extensions["cds_security"].verifier
    try:
        g.cds_client = verifier.verify(request.headers.get("Authorization"), audience_for(request))
    except AuthFailure as exc:
        path = repr(request.path)[:120]
        log.warning("authentication refused: %s (%s %s)", exc.reason, request.method, path)
        metrics.auth_refused(reason_class(exc.reason))
        raise Unauthorized("a valid CDS Hooks JWT is required") from None
    except ReplayStoreUnavailable as exc:
        log.error("jti replay store unavailable (%s): refusing the call", exc)
        raise ServiceUnavailable("authentication is temporarily unavailable") from None


def _challenge(response: Response) -> Response:
    # RFC 6750 §3: a 401 for a bearer-protected resource names the scheme.
    if response.status_code == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="cds-services"')
    return response


def install(app: Flask) -> None:
    """Authenticate before every guarded request (registered before the rate limiter)."""
    app.before_request(_authenticate)
    app.after_request(_challenge)
