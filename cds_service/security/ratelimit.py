"""Rate limits per CDS Client issuer (flask-limiter; Redis-backed when CDS_REDIS_URL is set)."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import parse_many

from cds_service.errors import ConfigError
from cds_service.http_errors import error_response
from cds_service.security.flask_auth import is_guarded
from cds_service.security.rate_counters import SCHEME as IN_PROCESS

log = logging.getLogger("cds_service.security")


def client_key() -> str:
    """The verified issuer; the peer address only when authentication is disabled."""
    client = g.get("cds_client")
    if client is not None:
        return f"iss:{client.iss}"
    return f"addr:{get_remote_address()}"


def _too_many(exc: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions["cds_security"].limiter
    current = limiter.current_limit
    retry_after = max(1, round(current.reset_at - time.time())) if current else 60
    log.warning("rate limit %s exceeded by %s", exc.description, client_key())
    response = error_response(429, "rate_limited", f"rate limit exceeded ({exc.description})")
    response.headers["Retry-After"] = str(retry_after)
    return response


def _redis_options(prefix: str) -> dict[str, str | int]:
    # The storage's own prefix leads every key (limits' default is "LIMITS"): operators find,
    # share and purge this service's keys by CDS_REDIS_KEY_PREFIX alone.
    return {"socket_timeout": 1, "socket_connect_timeout": 1, "key_prefix": f"{prefix}rate"}


def build_limiter(app: Flask) -> Limiter:
    """One shared bucket per issuer across all guarded endpoints (RATE_LIMIT)."""
    redis_url = app.config.get("REDIS_URL") or ""
    try:
        parse_many(app.config["RATE_LIMIT"])
    except ValueError:
        # Checked here: flask-limiter would only notice per request, and then not limit.
        raise ConfigError(
            f"CDS_RATE_LIMIT {app.config['RATE_LIMIT']!r} is not a rate such as '6000 per minute'"
        ) from None
    limiter = Limiter(
        key_func=client_key,
        application_limits=[
            ApplicationLimit(
                limit_provider=app.config["RATE_LIMIT"],
                exempt_when=lambda: not is_guarded(request),
            )
        ],
        storage_uri=redis_url or f"{IN_PROCESS}://",
        storage_options=_redis_options(app.config["REDIS_KEY_PREFIX"]) if redis_url else {},
        # A rate-limit store outage must not take the service down with it.
        swallow_errors=True,
        in_memory_fallback_enabled=bool(redis_url),
    )
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, _too_many)
    return limiter
