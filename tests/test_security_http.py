"""JWT authentication at the HTTP edge with create_app (CDS Hooks 2.0 §Trusting CDS Clients)."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.errors import ConfigError
from cds_service.security import issuers as issuers_module
from cds_service.security.issuers import SANDBOX_ISS, SANDBOX_JKU, SANDBOX_KID
from cds_service.security.local_issuer import LocalIssuer
from tests.conftest import make_app
from tests.security_support import JwksServer, attacks, bearer

BASE = "https://cds.example.org"
DISCOVERY = "/cds-services"
PV = "/cds-services/myopathy-patient-view"
FEEDBACK = f"{PV}/feedback"
EC = LocalIssuer(iss="https://ehr.example.org", algorithm="ES384")
RSA = LocalIssuer(iss="https://rsa.example.org", algorithm="RS384")


def pv_body(patient_id: str = "p1") -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": patient_id},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": patient_id},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []},
        },
    }


def issuers_file(tmp_path: Path, *entries: dict[str, Any]) -> str:
    path = tmp_path / f"issuers-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps({"issuers": list(entries)}))
    return str(path)


def secure_app(tmp_path: Path, **overrides: Any) -> Flask:
    """Auth required, our two issuers trusted, a public base URL as behind a proxy."""
    config: dict[str, Any] = {
        "AUTH": "required",
        "TRUSTED_ISSUERS_FILE": issuers_file(tmp_path, EC.issuer_entry(), RSA.issuer_entry()),
        "PUBLIC_BASE_URL": BASE,
    }
    config.update(overrides)
    return make_app(tmp_path, **config)


@pytest.fixture
def secure(tmp_path: Path) -> FlaskClient:
    return secure_app(tmp_path).test_client()


def assert_401(response: Any) -> None:
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert (error["status"], error["code"]) == (401, "unauthorized")
    assert set(error) <= {"status", "code", "message"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # A browser client (the sandbox) can only read the 401 when CORS headers are on it.
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_default_settings_refuse_an_unauthenticated_call(tmp_path: Path) -> None:
    app = make_app(tmp_path, AUTH="required")
    assert app.config["AUTH"] == "required"
    assert_401(app.test_client().get(DISCOVERY))


def test_signed_call_gets_its_cards_and_discovery(secure: FlaskClient) -> None:
    response = secure.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY))
    assert response.status_code == 200
    assert response.get_json()["services"]
    response = secure.post(PV, json=pv_body(), headers=RSA.authorization(BASE + PV))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert isinstance(response.get_json()["cards"], list)


@pytest.mark.parametrize("path", [DISCOVERY, PV, FEEDBACK, "/cds-services/unknown"])
def test_every_cds_endpoint_refuses_a_missing_token(secure: FlaskClient, path: str) -> None:
    if path == DISCOVERY:
        assert_401(secure.get(path))
    else:
        assert_401(secure.post(path, json=pv_body()))


ATTACK_NAMES = list(attacks(EC, RSA, BASE + PV))


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_gets_401_and_a_warning_without_the_token(
    secure: FlaskClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    header, fragment = attacks(EC, RSA, BASE + PV)[name]
    with caplog.at_level(logging.WARNING, logger="cds_service.security"):
        response = secure.post(PV, json=pv_body(), headers={"Authorization": header})
    assert_401(response)
    refusals = [r.getMessage() for r in caplog.records if "authentication refused" in r.msg]
    assert len(refusals) == 1
    assert fragment.lower() in refusals[0].lower()
    token = header.split(" ", 1)[-1]
    for secret in (token, token.rsplit(".", 1)[-1]):
        if secret:
            assert secret not in caplog.text


def test_401_body_does_not_tell_an_attacker_why(secure: FlaskClient) -> None:
    expired = EC.sign(BASE + PV, lifetime=-3600)
    body = secure.post(PV, json=pv_body(), headers={"Authorization": bearer(expired)})
    assert "expired" not in body.get_data(as_text=True).lower()


def test_replayed_token_is_refused_over_http(secure: FlaskClient) -> None:
    headers = EC.authorization(BASE + DISCOVERY)
    assert secure.get(DISCOVERY, headers=headers).status_code == 200
    assert_401(secure.get(DISCOVERY, headers=headers))


def test_aud_is_the_public_url_not_the_url_the_app_saw(secure: FlaskClient) -> None:
    seen_by_app = "http://localhost" + DISCOVERY
    assert_401(secure.get(DISCOVERY, headers=EC.authorization(seen_by_app)))
    assert_401(secure.get(DISCOVERY, headers=EC.authorization(BASE + PV)))
    assert secure.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY)).status_code == 200


def test_without_public_base_url_aud_is_the_request_url(tmp_path: Path) -> None:
    client = secure_app(tmp_path, PUBLIC_BASE_URL="").test_client()
    headers = EC.authorization("http://localhost" + DISCOVERY)
    assert client.get(DISCOVERY, headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_probes_and_api_description_need_no_token(secure: FlaskClient, path: str) -> None:
    assert secure.get(path).status_code == 200


def test_cors_preflight_needs_no_token(secure: FlaskClient) -> None:
    response = secure.options(
        PV,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_unknown_paths_are_guarded_too(secure: FlaskClient) -> None:
    assert_401(secure.get("/reports/overrides.json"))


def test_json_report_endpoint_needs_a_token(secure: FlaskClient) -> None:
    report = "/cds-services/_reports/overrides"
    assert_401(secure.get(report))
    signed = secure.get(report, headers=EC.authorization(BASE + report))
    assert signed.status_code == 200, signed.get_data(as_text=True)


def test_disabled_auth_is_logged_loudly_and_lets_calls_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cds_service.security"):
        client = make_app(tmp_path, AUTH="disabled").test_client()
    assert any("AUTHENTICATION DISABLED" in r.getMessage() for r in caplog.records)
    assert client.get(DISCOVERY).status_code == 200


def test_invalid_issuers_file_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text('{"issuers": [{"iss": "https://ehr.example.org"}]}')
    with pytest.raises(ConfigError, match="needs 'jwks', 'jku'"):
        make_app(tmp_path, AUTH="required", TRUSTED_ISSUERS_FILE=str(path))


def test_keys_from_an_allowed_jku_served_over_loopback(tmp_path: Path) -> None:
    issuer = LocalIssuer(iss="https://jku.example.org")
    with JwksServer().running() as server:
        url = server.url("/.well-known/jwks.json")
        server.documents["/.well-known/jwks.json"] = issuer.jwks()
        client = secure_app(
            tmp_path,
            TRUSTED_ISSUERS_FILE=issuers_file(tmp_path, issuer.issuer_entry(jku=[url])),
            JWKS_ALLOW_LOOPBACK_HTTP=True,
        ).test_client()
        ok = client.get(DISCOVERY, headers=issuer.authorization(BASE + DISCOVERY, jku=url))
        assert ok.status_code == 200
        other = server.url("/other.json")
        server.documents["/other.json"] = issuer.jwks()
        refused = client.get(DISCOVERY, headers=issuer.authorization(BASE + DISCOVERY, jku=other))
        assert_401(refused)
        assert server.hits == {"/.well-known/jwks.json": 1}


# --- Sandbox profile ------------------------------------------------------------------------

SANDBOX_LIKE = LocalIssuer(iss=SANDBOX_ISS, kid=SANDBOX_KID, algorithm="ES384")


def sandbox_token_headers() -> dict[str, str]:
    return SANDBOX_LIKE.authorization(BASE + DISCOVERY, jku=SANDBOX_JKU)


@pytest.fixture
def sandbox_key_is_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the bundled-JWKS mechanism at a key we hold (the real private key is not used)."""
    monkeypatch.setattr(issuers_module, "sandbox_jwks", SANDBOX_LIKE.jwks)


@pytest.mark.usefixtures("sandbox_key_is_ours")
def test_sandbox_token_accepted_only_with_the_sandbox_profile(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    off = make_app(tmp_path, AUTH="required", PUBLIC_BASE_URL=BASE).test_client()
    assert_401(off.get(DISCOVERY, headers=sandbox_token_headers()))
    with caplog.at_level(logging.WARNING, logger="cds_service.security"):
        app = make_app(tmp_path, AUTH="required", PUBLIC_BASE_URL=BASE, SANDBOX_PROFILE=True)
    assert any("UNSAFE FOR PRODUCTION" in r.getMessage() for r in caplog.records)
    response = app.test_client().get(DISCOVERY, headers=sandbox_token_headers())
    assert response.status_code == 200


def test_sandbox_profile_uses_the_real_public_key(tmp_path: Path) -> None:
    """Our key under the sandbox kid must fail against the bundled sandbox public key."""
    app = make_app(tmp_path, AUTH="required", PUBLIC_BASE_URL=BASE, SANDBOX_PROFILE=True)
    issuer = app.extensions["cds_security"].verifier.issuers[SANDBOX_ISS]
    assert issuer.keys[SANDBOX_KID]["x"].startswith("dw_JGR8nB2I6")
    assert_401(app.test_client().get(DISCOVERY, headers=sandbox_token_headers()))


def test_sandbox_profile_sits_beside_the_issuers_file(tmp_path: Path) -> None:
    app = secure_app(tmp_path, SANDBOX_PROFILE=True)
    assert set(app.extensions["cds_security"].verifier.issuers) == {EC.iss, RSA.iss, SANDBOX_ISS}


# --- Redis: several workers share the jti store ----------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    url = os.environ.get("CDS_TEST_REDIS_URL")
    if not url:
        pytest.skip("CDS_TEST_REDIS_URL is not set")
    import redis

    prefix = f"cds-test-{uuid.uuid4().hex}:"
    yield url, prefix
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)
    client.close()


@pytest.mark.redis
def test_two_workers_sharing_redis_refuse_a_replay(
    tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    url, prefix = redis_prefix
    worker_a = secure_app(tmp_path, REDIS_URL=url, REDIS_KEY_PREFIX=prefix).test_client()
    worker_b = secure_app(tmp_path, REDIS_URL=url, REDIS_KEY_PREFIX=prefix).test_client()
    headers = EC.authorization(BASE + DISCOVERY)
    assert worker_a.get(DISCOVERY, headers=headers).status_code == 200
    assert_401(worker_b.get(DISCOVERY, headers=headers))


@pytest.mark.redis
def test_two_workers_sharing_redis_share_the_rate_limit(
    tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    url, prefix = redis_prefix
    settings = {"REDIS_URL": url, "REDIS_KEY_PREFIX": prefix, "RATE_LIMIT": "2 per minute"}
    worker_a = secure_app(tmp_path, **settings).test_client()
    worker_b = secure_app(tmp_path, **settings).test_client()
    assert worker_a.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY)).status_code == 200
    assert worker_b.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY)).status_code == 200
    limited = worker_a.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY))
    assert limited.status_code == 429


@pytest.mark.redis
def test_every_redis_key_the_service_writes_starts_with_the_prefix(
    tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    """Operators share one Redis between services and purge by CDS_REDIS_KEY_PREFIX."""
    import redis

    url, prefix = redis_prefix
    settings = {"REDIS_URL": url, "REDIS_KEY_PREFIX": prefix, "RATE_LIMIT": "1 per minute"}
    client = secure_app(tmp_path, **settings).test_client()
    assert client.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY)).status_code == 200
    assert client.get(DISCOVERY, headers=RSA.authorization(BASE + DISCOVERY)).status_code == 200
    assert client.get(DISCOVERY, headers=EC.authorization(BASE + DISCOVERY)).status_code == 429
    server = redis.Redis.from_url(url)
    try:
        written = [key.decode() for key in server.scan_iter(match=f"*{prefix}*", count=1000)]
    finally:
        server.close()
    assert {key.split(prefix, 1)[1].split(":", 1)[0] for key in written} >= {"jti", "rate"}
    assert [key for key in written if not key.startswith(prefix)] == []
