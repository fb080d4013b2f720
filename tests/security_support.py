"""Helpers for the security tests: a loopback JWK Set server and hand-made attack tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from cds_service.security.local_issuer import LocalIssuer


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with whatever header and signature an attacker chooses."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    return f"{head}.{body}.{b64url(signature)}"


def claims_for(issuer: LocalIssuer, aud: str, now: float) -> dict[str, Any]:
    return {"iss": issuer.iss, "aud": aud, "iat": int(now), "exp": int(now) + 300, "jti": "x1"}


def hs256_with_public_key(issuer: LocalIssuer, aud: str, now: float) -> str:
    """The key-confusion attack: HMAC keyed with the issuer's public key PEM."""
    public_pem = issuer._key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.kid}
    payload = claims_for(issuer, aud, now)
    unsigned = unsigned_token(header, payload).rsplit(".", 1)[0]
    signature = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{b64url(signature)}"


def alg_none(issuer: LocalIssuer, aud: str, now: float) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": issuer.kid}
    return unsigned_token(header, claims_for(issuer, aud, now))


def bearer(token: str) -> str:
    return f"Bearer {token}"


def attacks(ec: LocalIssuer, rsa: LocalIssuer, aud: str) -> dict[str, tuple[str, str]]:
    """name -> (Authorization header, expected reason fragment)."""
    now = time.time()
    other_key_same_kid = LocalIssuer(iss=ec.iss, kid=ec.kid)
    stranger = LocalIssuer(iss="https://evil.example.org")
    jku = "https://evil.example.org/jwks.json"
    return {
        "expired": (bearer(ec.sign(aud, now=now - 3600)), "ExpiredSignature"),
        "iat in future": (bearer(ec.sign(aud, now=now + 600)), "ImmatureSignature"),
        "wrong aud": (bearer(ec.sign("https://cds.example.org/cds-services")), "Audience"),
        "wrong iss": (bearer(stranger.sign(aud)), "untrusted issuer"),
        "untrusted jku": (bearer(ec.sign(aud, jku=jku)), "jku"),
        "unknown kid": (bearer(ec.sign(aud, headers={"kid": "nope"})), "unknown kid"),
        "bad signature": (bearer(other_key_same_kid.sign(aud)), "Signature"),
        "alg none": (bearer(alg_none(ec, aud, now)), "algorithm 'none'"),
        "HS256 with public key": (bearer(hs256_with_public_key(ec, aud, now)), "HS256"),
        "alg other than the key's": (bearer(rsa.sign(aud, headers={"alg": "PS384"})), "key"),
        "alg of another curve": (bearer(relabelled(ec.sign(aud), "ES256", ec.kid)), "key"),
        "missing jti": (bearer(ec.sign(aud, claims={"jti": None})), "jti"),
        "missing exp": (bearer(_without(ec, "exp", aud)), "exp"),
        "missing iat": (bearer(_without(ec, "iat", aud)), "iat"),
        "exp too far ahead": (bearer(ec.sign(aud, lifetime=86400)), "too far"),
        "missing header": ("", "missing"),
        "not bearer": (f"Basic {ec.sign(aud)}", "malformed"),
        "garbage token": ("Bearer abc.def.ghi", "DecodeError"),
        "two tokens": (f"Bearer {ec.sign(aud)} {ec.sign(aud)}", "malformed"),
        "wrong typ": (bearer(ec.sign(aud, headers={"typ": "at+jwt"})), "typ"),
        "missing kid": (bearer(ec.sign(aud, headers={"kid": None})), "kid"),
        "jti too long": (bearer(ec.sign(aud, jti="j" * 300)), "jti"),
        "oversized header": (bearer(ec.sign(aud, claims={"pad": "x" * 20000})), "too long"),
    }


def relabelled(token: str, alg: str, kid: str) -> str:
    """The same signature under a header that names another algorithm."""
    _, body, signature = token.split(".")
    header = unsigned_token({"alg": alg, "typ": "JWT", "kid": kid}, {}).split(".")[0]
    return f"{header}.{body}.{signature}"


def _without(issuer: LocalIssuer, claim: str, aud: str) -> str:
    payload = {"iss": issuer.iss, "aud": aud, "jti": "j-" + claim}
    payload |= {"iat": int(time.time()), "exp": int(time.time()) + 60}
    payload.pop(claim)
    return jwt.encode(payload, issuer._key, algorithm="ES384", headers={"kid": issuer.kid})


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving JSON documents by path, counting requests."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path not in server.documents:
                    self.send_error(404)
                    return
                body = json.dumps(server.documents[self.path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet: request lines are not interesting here."""

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            thread.join(timeout=5)
