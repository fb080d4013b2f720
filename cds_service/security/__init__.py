"""Security: CDS Hooks JWT authentication, trusted issuers, rate limits and hostile input."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from flask_limiter import Limiter

from cds_service.security import flask_auth, headers
from cds_service.security.bounds import check_hook_body
from cds_service.security.flask_auth import public
from cds_service.security.issuers import (
    SANDBOX_ISS,
    TrustedIssuer,
    load_issuers_file,
    sandbox_issuer,
)
from cds_service.security.jwks import JwksFetcher
from cds_service.security.ratelimit import build_limiter
from cds_service.security.replay import MemoryReplayStore, RedisReplayStore, ReplayStore
from cds_service.security.verifier import TokenVerifier, VerifierSettings

__all__ = ["Security", "check_hook_body", "init_app", "public"]
log = logging.getLogger("cds_service.security")


@dataclass
class Security:
    """What app.extensions["cds_security"] holds."""

    verifier: TokenVerifier
    replay_store: ReplayStore
    limiter: Limiter
    auth_required: bool


def trusted_issuers(app: Flask) -> dict[str, TrustedIssuer]:
    """The issuers file plus, in the sandbox profile, the public CDS Hooks Sandbox."""
    config = app.config
    issuers: dict[str, TrustedIssuer] = {}
    if config["TRUSTED_ISSUERS_FILE"]:
        issuers = load_issuers_file(
            config["TRUSTED_ISSUERS_FILE"],
            allow_loopback_http=bool(config["JWKS_ALLOW_LOOPBACK_HTTP"]),
        )
    if config["SANDBOX_PROFILE"]:
        log.warning(
            "SANDBOX PROFILE ON: trusting %s, whose private signing key is PUBLIC; anyone can "
            "mint tokens this service accepts. Demo and testing only: UNSAFE FOR PRODUCTION.",
            SANDBOX_ISS,
        )
        issuers.setdefault(SANDBOX_ISS, sandbox_issuer())
    return issuers


def _replay_store(app: Flask) -> ReplayStore:
    if app.config["REDIS_URL"]:
        prefix = f"{app.config['REDIS_KEY_PREFIX']}jti:"
        return RedisReplayStore.from_url(app.config["REDIS_URL"], prefix=prefix)
    return MemoryReplayStore()


def _log_posture(app: Flask, issuers: dict[str, TrustedIssuer], auth_required: bool) -> None:
    if not auth_required:
        log.warning(
            "AUTHENTICATION DISABLED (CDS_AUTH=disabled): anyone who can reach this service "
            "can call it. Never run like this on a network other people can reach."
        )
        return
    if not issuers:
        log.warning("no trusted issuers (CDS_TRUSTED_ISSUERS_FILE unset): every call will get 401")
    if not app.config["REDIS_URL"]:
        log.info("jti replay store is in-process; set CDS_REDIS_URL when several workers serve")
    log.info("JWT authentication required; %d trusted issuer(s)", len(issuers))


def init_app(app: Flask) -> Security:
    """Validate security settings and install auth, rate limits and security headers."""
    config = app.config
    auth_required = config["AUTH"] == "required"
    issuers = trusted_issuers(app)
    replay_store = _replay_store(app)
    fetcher = JwksFetcher(
        timeout=float(config["JWKS_TIMEOUT_SECONDS"]),
        cache_seconds=float(config["JWKS_CACHE_SECONDS"]),
        min_refetch_seconds=float(config["JWKS_MIN_REFETCH_SECONDS"]),
        allow_loopback_http=bool(config["JWKS_ALLOW_LOOPBACK_HTTP"]),
    )
    settings = VerifierSettings(
        leeway_seconds=float(config["JWT_LEEWAY_SECONDS"]),
        max_lifetime_seconds=float(config["JWT_MAX_LIFETIME_SECONDS"]),
    )
    verifier = TokenVerifier(issuers, fetcher, replay_store, settings)
    if auth_required:
        flask_auth.install(app)  # before the limiter, so limits are per verified issuer
    limiter = build_limiter(app)
    headers.install(app)
    security = Security(verifier, replay_store, limiter, auth_required)
    app.extensions["cds_security"] = security
    _log_posture(app, issuers, auth_required)
    return security
