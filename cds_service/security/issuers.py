"""Trusted CDS Clients: the issuers file and the sandbox profile (CDS Hooks 2.0 §Trusting)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cds_service.errors import ConfigError
from cds_service.security.keys import UnusableKey, index_key_set
from cds_service.security.urls import check_jku_url

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
_SANDBOX_JWKS_RESOURCE = "cds-hooks-sandbox-jwks.json"


@dataclass(frozen=True)
class TrustedIssuer:
    """One CDS Client we accept JWTs from: its inline keys, allowed jku URLs, tenants."""

    iss: str
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    jku: tuple[str, ...] = ()
    tenants: frozenset[str] = frozenset()


def _string_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"'{what}' must be a list of non-empty strings")
    return value


def parse_issuer(entry: Any, *, allow_loopback_http: bool) -> TrustedIssuer:
    """Validate one entry of the issuers file; raises ValueError naming the problem."""
    if not isinstance(entry, dict):
        raise ValueError("an issuer must be a JSON object")
    iss = entry.get("iss")
    if not isinstance(iss, str) or not iss:
        raise ValueError("'iss' must be a non-empty string")
    if "jwks" not in entry and "jku" not in entry:
        raise ValueError(f"issuer {iss!r} needs 'jwks', 'jku' or both")
    try:
        keys = index_key_set(entry["jwks"], strict=True) if "jwks" in entry else {}
    except UnusableKey as exc:
        raise ValueError(f"issuer {iss!r}: jwks: {exc}") from None
    jku = _string_list(entry.get("jku", []), "jku")
    for url in jku:
        check_jku_url(url, allow_loopback_http=allow_loopback_http)
    if not keys and not jku:
        raise ValueError(f"issuer {iss!r} has no keys and no jku URL")
    tenants = _string_list(entry.get("tenants", []), "tenants")
    return TrustedIssuer(iss=iss, keys=keys, jku=tuple(jku), tenants=frozenset(tenants))


def parse_issuers(document: Any, *, allow_loopback_http: bool) -> dict[str, TrustedIssuer]:
    """Validate the whole issuers document {"issuers": [...]}; raises ValueError."""
    if not isinstance(document, dict) or not isinstance(document.get("issuers"), list):
        raise ValueError('the file must be a JSON object {"issuers": [...]}')
    issuers: dict[str, TrustedIssuer] = {}
    for index, entry in enumerate(document["issuers"]):
        try:
            issuer = parse_issuer(entry, allow_loopback_http=allow_loopback_http)
        except ValueError as exc:
            raise ValueError(f"issuers[{index}]: {exc}") from None
        if issuer.iss in issuers:
            raise ValueError(f"issuers[{index}]: issuer {issuer.iss!r} is listed twice")
        issuers[issuer.iss] = issuer
    return issuers


def load_issuers_file(path: str, *, allow_loopback_http: bool) -> dict[str, TrustedIssuer]:
    """Read and validate TRUSTED_ISSUERS_FILE; raises ConfigError naming file and problem."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"CDS_TRUSTED_ISSUERS_FILE {path!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"CDS_TRUSTED_ISSUERS_FILE {path!r}: not valid JSON ({exc})") from None
    try:
        return parse_issuers(document, allow_loopback_http=allow_loopback_http)
    except ValueError as exc:
        raise ConfigError(f"CDS_TRUSTED_ISSUERS_FILE {path!r}: {exc}") from None


def sandbox_jwks() -> dict[str, Any]:
    """The CDS Hooks Sandbox's public key set, bundled as package data (see README)."""
    text = resources.files(__package__).joinpath(_SANDBOX_JWKS_RESOURCE).read_text()
    document: dict[str, Any] = json.loads(text)
    return document


def sandbox_issuer(jwks: dict[str, Any] | None = None) -> TrustedIssuer:
    """The public CDS Hooks Sandbox as an issuer: demo only, its private key is public."""
    keys = index_key_set(sandbox_jwks() if jwks is None else jwks, strict=True)
    return TrustedIssuer(iss=SANDBOX_ISS, keys=keys, jku=(SANDBOX_JKU,))
