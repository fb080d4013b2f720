"""Public-key handling for CDS Hooks JWTs (CDS Hooks 2.0 §Trusting CDS Clients)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt
from jwt import PyJWK

# Asymmetric algorithms only: `none` and HMAC (HS*) are never accepted (CDS Hooks 2.0 §JWT).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
_EC_CURVES = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})
# Members that only a private JWK carries (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS = 2048


class UnusableKey(ValueError):
    """A JWK that cannot be used to verify CDS Hooks JWTs."""


def algorithms_for(jwk: Mapping[str, Any]) -> frozenset[str]:
    """The asymmetric algorithms a public JWK may verify (its `alg` wins when present)."""
    kty = jwk.get("kty")
    if kty == "EC":
        family = frozenset({_EC_CURVES[jwk["crv"]]}) if jwk.get("crv") in _EC_CURVES else None
    elif kty == "RSA":
        family = _RSA_ALGORITHMS
    elif kty == "OKP":
        family = frozenset({"EdDSA"}) if jwk.get("crv") in _OKP_CURVES else None
    else:
        family = None
    if family is None:
        raise UnusableKey(f"unsupported key type {kty!r} (only EC, RSA and OKP public keys)")
    alg = jwk.get("alg")
    if alg is None:
        return family
    if alg not in family:
        raise UnusableKey(f"alg {alg!r} does not fit key type {kty!r}")
    return frozenset({alg})


def check_public_jwk(jwk: Any) -> dict[str, Any]:
    """Validate one JWK from a trusted key set; returns it or raises UnusableKey."""
    if not isinstance(jwk, dict):
        raise UnusableKey("a key is not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnusableKey("a key has no 'kid'")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise UnusableKey(f"key {kid!r} holds private or symmetric key material")
    if jwk.get("use", "sig") != "sig":
        raise UnusableKey(f"key {kid!r} is not a signing key (use={jwk.get('use')!r})")
    algorithms = algorithms_for(jwk)
    try:
        parsed = PyJWK(jwk, algorithm=sorted(algorithms)[0])
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise UnusableKey(f"key {kid!r} cannot be loaded: {type(exc).__name__}") from None
    key_size = getattr(parsed.key, "key_size", None)
    if jwk["kty"] == "RSA" and isinstance(key_size, int) and key_size < MIN_RSA_BITS:
        raise UnusableKey(f"key {kid!r} is a {key_size}-bit RSA key (minimum {MIN_RSA_BITS})")
    return jwk


def index_key_set(jwks: Any, *, strict: bool) -> dict[str, dict[str, Any]]:
    """Map kid -> JWK for a JWK Set; strict raises on any bad key, lenient skips it."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise UnusableKey("a JWK Set must be an object with a 'keys' list")
    indexed: dict[str, dict[str, Any]] = {}
    for raw in jwks["keys"]:
        try:
            jwk = check_public_jwk(raw)
        except UnusableKey:
            if strict:
                raise
            continue
        if jwk["kid"] in indexed:
            if strict:
                raise UnusableKey(f"kid {jwk['kid']!r} appears twice")
            continue
        indexed[jwk["kid"]] = jwk
    return indexed


def verification_key(jwk: Mapping[str, Any], alg: str) -> PyJWK:
    """A PyJWK bound to `alg`, which must be one the key itself allows."""
    if alg not in ASYMMETRIC_ALGORITHMS or alg not in algorithms_for(jwk):
        raise UnusableKey(f"alg {alg!r} is not allowed for key type {jwk.get('kty')!r}")
    return PyJWK(dict(jwk), algorithm=alg)
