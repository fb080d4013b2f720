"""The console's local CDS Client: an ES384 key under DATA_DIR that only this app trusts."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from flask import Flask

from cds_service.security.issuers import parse_issuer
from cds_service.security.local_issuer import LocalIssuer

log = logging.getLogger("cds_service.console")

CONSOLE_ISS = "urn:cds-myopathy:tester-console"
KEY_FILE = "console-issuer-es384.pem"
# Short: the browser asks for a fresh token right before each call (CDS Hooks 'jti' once).
TOKEN_LIFETIME_SECONDS = 60


def _thumbprint_kid(issuer: LocalIssuer) -> str:
    """RFC 7638-style thumbprint: every worker sharing the key file names it the same."""
    jwk = issuer.public_jwk()
    canonical = f'{{"crv":"{jwk["crv"]}","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _read_or_create_pem(path: Path) -> bytes:
    """The key file, created atomically (several gunicorn workers may start at once)."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = LocalIssuer(iss=CONSOLE_ISS).private_pem()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".console-key-")
    try:
        os.write(fd, pem)
        os.close(fd)
        os.link(tmp, path)  # fails if another worker won the race: use theirs
        log.info("console: created a local signing key under %s", path.parent)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def load_console_issuer(data_dir: str) -> LocalIssuer:
    """The console's issuer, its private key kept in DATA_DIR (mode 0600)."""
    pem = _read_or_create_pem(Path(data_dir) / KEY_FILE)
    issuer = LocalIssuer.from_pem(pem, iss=CONSOLE_ISS)
    issuer.kid = _thumbprint_kid(issuer)
    return issuer


def trust_in_process(app: Flask, issuer: LocalIssuer) -> None:
    """Register the console issuer's public key with this app's verifier, and nowhere else."""
    security = app.extensions.get("cds_security")
    if security is None:
        log.warning("console: no security extension; tokens are minted but nobody checks them")
        return
    security.verifier.issuers[issuer.iss] = parse_issuer(
        issuer.issuer_entry(), allow_loopback_http=False
    )
    log.warning(
        "TESTER'S CONSOLE ON: %s mints JWTs this service trusts for anyone who can reach "
        "/console. Local testing only; keep CDS_CONSOLE off in production.",
        issuer.iss,
    )
