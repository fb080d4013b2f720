"""Trusted issuers file and sandbox profile data (CDS Hooks 2.0 §Trusting CDS Clients)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.errors import ConfigError
from cds_service.security.issuers import (
    SANDBOX_ISS,
    SANDBOX_JKU,
    SANDBOX_KID,
    load_issuers_file,
    sandbox_issuer,
)
from cds_service.security.local_issuer import LocalIssuer

ISSUER = LocalIssuer(iss="https://ehr.example.org")
GOOD_KEY = ISSUER.public_jwk()


def write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "issuers.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def test_full_entry_is_loaded(tmp_path: Path) -> None:
    entry = {
        "iss": "https://ehr.example.org",
        "jwks": {"keys": [GOOD_KEY]},
        "jku": ["https://ehr.example.org/.well-known/jwks.json"],
        "tenants": ["t1"],
        "name": "extra keys are allowed",
    }
    issuers = load_issuers_file(write(tmp_path, {"issuers": [entry]}), allow_loopback_http=False)
    issuer = issuers["https://ehr.example.org"]
    assert issuer.keys == {ISSUER.kid: GOOD_KEY}
    assert issuer.jku == ("https://ehr.example.org/.well-known/jwks.json",)
    assert issuer.tenants == {"t1"}


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"iss": "https://ehr.example.org", "jwks": {"keys": [GOOD_KEY]}}
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


PRIVATE_KEY = {**GOOD_KEY, "d": "secret"}
HMAC_KEY = {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}
BAD_FILES = {
    "not json": ("{", "not valid JSON"),
    "no issuers list": ({"iss": "x"}, '{"issuers"'),
    "issuer without iss": ({"issuers": [_entry(iss=None)]}, "issuers[0]: 'iss'"),
    "no jwks nor jku": ({"issuers": [_entry(jwks=None)]}, "needs 'jwks', 'jku'"),
    "http jku": ({"issuers": [_entry(jku=["http://ehr.example.org/k"])]}, "https"),
    "jku not a list": ({"issuers": [_entry(jku="https://ehr.example.org/k")]}, "'jku'"),
    "private key": ({"issuers": [_entry(jwks={"keys": [PRIVATE_KEY]})]}, "private"),
    "hmac key": ({"issuers": [_entry(jwks={"keys": [HMAC_KEY]})]}, "private or symmetric"),
    "key without kid": (
        {"issuers": [_entry(jwks={"keys": [{**GOOD_KEY, "kid": None}]})]},
        "no 'kid'",
    ),
    "duplicate kid": ({"issuers": [_entry(jwks={"keys": [GOOD_KEY, GOOD_KEY]})]}, "twice"),
    "duplicate issuer": ({"issuers": [_entry(), _entry()]}, "listed twice"),
    "tenants not strings": ({"issuers": [_entry(tenants=[1])]}, "'tenants'"),
    "broken key": (
        {"issuers": [_entry(jwks={"keys": [{**GOOD_KEY, "x": "AAAA"}]})]},
        "cannot be loaded",
    ),
    "alg of wrong family": (
        {"issuers": [_entry(jwks={"keys": [{**GOOD_KEY, "alg": "RS256"}]})]},
        "does not fit",
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_issuers_file_is_refused_at_start_up_naming_the_problem(
    name: str, tmp_path: Path
) -> None:
    document, fragment = BAD_FILES[name]
    path = write(tmp_path, document)
    with pytest.raises(ConfigError) as caught:
        load_issuers_file(path, allow_loopback_http=False)
    assert fragment in caught.value.message
    assert path in caught.value.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_issuers_file(str(tmp_path / "absent.json"), allow_loopback_http=False)


def test_small_rsa_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = LocalIssuer(
        algorithm="RS256",
        private_key=rsa.generate_private_key(public_exponent=65537, key_size=1024),
    )
    path = write(tmp_path, {"issuers": [weak.issuer_entry()]})
    with pytest.raises(ConfigError, match="1024-bit"):
        load_issuers_file(path, allow_loopback_http=False)


def test_loopback_http_jku_only_when_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, {"issuers": [_entry(jku=["http://127.0.0.1:9/jwks.json"])]})
    with pytest.raises(ConfigError, match="https"):
        load_issuers_file(path, allow_loopback_http=False)
    assert load_issuers_file(path, allow_loopback_http=True)


def test_bundled_sandbox_key_set_is_the_public_sandbox_key() -> None:
    issuer = sandbox_issuer()
    assert issuer.iss == SANDBOX_ISS
    assert issuer.jku == (SANDBOX_JKU,)
    key = issuer.keys[SANDBOX_KID]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-384", "ES384")
    assert key["x"].startswith("dw_JGR8nB2I6")
