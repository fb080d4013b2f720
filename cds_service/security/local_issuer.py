"""A local CDS Client key pair that signs real CDS Hooks JWTs (tests and the tester's console)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_CURVES: dict[str, ec.EllipticCurve] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}


def generate_private_key(algorithm: str = "ES384") -> PrivateKey:
    """A fresh key for `algorithm`: EC P-384 for ES384 (the CDS Hooks recommendation)."""
    if algorithm in _CURVES:
        return ec.generate_private_key(_CURVES[algorithm])
    if algorithm[:2] in ("RS", "PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported algorithm {algorithm!r}")


@dataclass
class LocalIssuer:
    """Signs CDS Hooks JWTs (iss, aud, exp, iat, jti; header alg, kid, typ, optional jku)."""

    iss: str = "urn:cds-service:local-issuer"
    algorithm: str = "ES384"
    kid: str = field(default_factory=lambda: str(uuid.uuid4()))
    private_key: PrivateKey | None = None

    def __post_init__(self) -> None:
        if self.private_key is None:
            self.private_key = generate_private_key(self.algorithm)

    @property
    def _key(self) -> PrivateKey:
        assert self.private_key is not None  # set in __post_init__
        return self.private_key

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with kid, alg and use."""
        public = self._key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        """A JWK Set holding the public key (what a jku URL serves)."""
        return {"keys": [self.public_jwk()]}

    def issuer_entry(
        self, *, jku: list[str] | None = None, tenants: list[str] | None = None
    ) -> dict[str, Any]:
        """This issuer as one entry of a TRUSTED_ISSUERS_FILE; inline jwks unless jku given."""
        entry: dict[str, Any] = {"iss": self.iss}
        if jku:
            entry["jku"] = jku
        else:
            entry["jwks"] = self.jwks()
        if tenants:
            entry["tenants"] = tenants
        return entry

    def private_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted: for a developer's machine only."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, pem: bytes, **kwargs: Any) -> LocalIssuer:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError("only EC and RSA private keys are supported")
        return cls(private_key=key, **kwargs)

    def sign(
        self,
        aud: str | list[str],
        *,
        lifetime: float = 300,
        now: float | None = None,
        jti: str | None = None,
        jku: str | None = None,
        tenant: str | None = None,
        claims: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """A signed JWT for `aud` (the exact URL called); claims/headers override defaults.

        A header given as None is left out (tests use this to drop `kid`).
        """
        issued = time.time() if now is None else now
        payload: dict[str, Any] = {
            "iss": self.iss,
            "aud": aud,
            "iat": int(issued),
            "exp": int(issued + lifetime),
            "jti": jti or str(uuid.uuid4()),
        }
        if tenant is not None:
            payload["tenant"] = tenant
        payload.update(claims or {})
        header: dict[str, Any] = {"typ": "JWT", "kid": self.kid}
        if jku is not None:
            header["jku"] = jku
        header.update(headers or {})
        header = {name: value for name, value in header.items() if value is not None}
        return jwt.encode(payload, self._key, algorithm=self.algorithm, headers=header)

    def authorization(self, aud: str | list[str], **kwargs: Any) -> dict[str, str]:
        """The Authorization header for one call."""
        return {"Authorization": f"Bearer {self.sign(aud, **kwargs)}"}
