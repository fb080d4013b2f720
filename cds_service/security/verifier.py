"""CDS Hooks 2.0 JWT bearer verification, framework-free (§Trusting CDS Clients)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from cds_service.security.issuers import TrustedIssuer
from cds_service.security.jwks import JwksFetcher
from cds_service.security.keys import ASYMMETRIC_ALGORITHMS, UnusableKey, verification_key
from cds_service.security.replay import ReplayStore

MAX_TOKEN_CHARS = 16 * 1024
MAX_JTI_CHARS = 256
_BEARER = re.compile(r"Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)", re.IGNORECASE)
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


class AuthFailure(Exception):
    """Why a token was refused; the reason never contains the token and is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedToken:
    """What a verified CDS Client JWT tells us."""

    iss: str
    kid: str
    jti: str
    expires_at: float
    tenant: str | None = None


@dataclass(frozen=True)
class VerifierSettings:
    leeway_seconds: float = 30.0
    # Caps how long a jti must be remembered; the sandbox uses 300 s.
    max_lifetime_seconds: float = 3600.0


class TokenVerifier:
    """Checks an Authorization header against trusted issuers for one audience URL."""

    def __init__(
        self,
        issuers: Mapping[str, TrustedIssuer],
        fetcher: JwksFetcher,
        replay_store: ReplayStore,
        settings: VerifierSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuers = dict(issuers)
        self._fetcher = fetcher
        self._replay = replay_store
        self._settings = settings or VerifierSettings()
        self._clock = clock

    def verify(self, authorization: str | None, audience: str) -> VerifiedToken:
        """Return the verified token or raise AuthFailure with a log-safe reason."""
        token = _bearer_token(authorization)
        try:
            return self._verify(token, audience)
        except jwt.PyJWTError as exc:
            raise AuthFailure(_describe(exc)) from None
        except UnusableKey as exc:
            raise AuthFailure(f"key refused: {exc}") from None
        except (ValueError, TypeError, KeyError, OverflowError):
            raise AuthFailure("malformed token") from None

    def _verify(self, token: str, audience: str) -> VerifiedToken:
        header = jwt.get_unverified_header(token)
        alg, kid = _check_header(header)
        unverified = jwt.decode(token, options={"verify_signature": False})
        iss = unverified.get("iss") if isinstance(unverified, dict) else None
        if not isinstance(iss, str) or iss not in self.issuers:
            raise AuthFailure(f"untrusted issuer {_loggable(iss)}")
        issuer = self.issuers[iss]
        jwk = self._find_key(issuer, kid, header.get("jku"))
        claims = jwt.decode(
            token,
            key=verification_key(jwk, alg),
            algorithms=[alg],
            audience=audience,
            issuer=iss,
            leeway=self._settings.leeway_seconds,
            options={"require": _REQUIRED_CLAIMS, "verify_iat": True},
        )
        return self._check_claims(issuer, kid, claims)

    def _find_key(self, issuer: TrustedIssuer, kid: str, jku: Any) -> dict[str, Any]:
        if jku is not None and jku not in issuer.jku:
            raise AuthFailure(f"jku {_loggable(jku)} not allowed for issuer {issuer.iss!r}")
        if kid in issuer.keys:
            return issuer.keys[kid]
        for url in [jku] if jku is not None else issuer.jku:
            found = self._fetcher.find_key(url, kid)
            if found is not None:
                return found
        raise AuthFailure(f"unknown kid {_loggable(kid)} for issuer {issuer.iss!r}")

    def _check_claims(
        self, issuer: TrustedIssuer, kid: str, claims: dict[str, Any]
    ) -> VerifiedToken:
        now = self._clock()
        settings = self._settings
        for name in ("exp", "iat", "nbf"):
            # RFC 7519 4.1.4: a NumericDate is a JSON number; PyJWT also takes "123" strings.
            value = claims.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AuthFailure(f"{name} must be a number")
        exp = float(claims["exp"])
        if exp - now > settings.max_lifetime_seconds + settings.leeway_seconds:
            raise AuthFailure("exp too far in the future")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS:
            raise AuthFailure("jti must be a non-empty string")
        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise AuthFailure("tenant must be a string")
        if issuer.tenants and tenant not in issuer.tenants:
            raise AuthFailure(f"tenant {_loggable(tenant)} not allowed for issuer {issuer.iss!r}")
        # Last, so that a token refused for another reason does not use up its jti.
        if not self._replay.first_use(issuer.iss, jti, exp + settings.leeway_seconds):
            raise AuthFailure(f"jti replayed for issuer {issuer.iss!r}")
        return VerifiedToken(iss=issuer.iss, kid=kid, jti=jti, expires_at=exp, tenant=tenant)


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthFailure("missing bearer token")
    if len(authorization) > MAX_TOKEN_CHARS:
        raise AuthFailure("authorization header too long")
    match = _BEARER.fullmatch(authorization.strip())
    if match is None:
        raise AuthFailure("malformed authorization header")
    return match.group(1)


def _check_header(header: Any) -> tuple[str, str]:
    if not isinstance(header, dict):
        raise AuthFailure("malformed JOSE header")
    alg = header.get("alg")
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise AuthFailure(f"algorithm {_loggable(alg)} not allowed")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise AuthFailure(f"typ {_loggable(typ)} not allowed")
    if "crit" in header:
        raise AuthFailure("critical header extensions are not supported")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthFailure("missing kid")
    return alg, kid


def _describe(exc: jwt.PyJWTError) -> str:
    """PyJWT's messages name the failed check, never the token."""
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def _loggable(value: Any) -> str:
    """Client-chosen strings are quoted and cut so they cannot forge log lines."""
    return repr(value)[:80]
