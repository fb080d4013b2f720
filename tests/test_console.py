"""Tester's console: off by default, pages render, the token endpoint's rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from cds_service.console.drugs import drug_choices
from cds_service.console.issuer import CONSOLE_ISS, load_console_issuer
from cds_service.fhir.scenarios import iter_scenarios
from cds_service.security.keys import verification_key
from fhir_mappings import load_terminology
from tests.conftest import FIXTURES, make_app
from tests.console_support import CK_ULN, CK_VALUES, console_app, scenario_with_delete_suggestion

BASE = "http://localhost"
SERVICE_URL = f"{BASE}/cds-services/myopathy-order-select"


@pytest.fixture
def console(tmp_path: Path) -> Flask:
    return console_app(tmp_path)


@pytest.fixture
def console_client(console: Flask) -> FlaskClient:
    return console.test_client()


def page_data(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="console-data">(.*?)</script>', html, re.S
    )
    assert match, "the page carries its data block"
    data: dict[str, Any] = orjson.loads(match.group(1))
    return data


def mint(client: FlaskClient, url: str, **headers: str) -> Any:
    return client.post("/console/api/token", json={"url": url}, headers=headers)


@pytest.mark.parametrize(
    "path", ["/console/", "/console/patients/cau-2-fires", "/console/report", "/console/api/token"]
)
def test_console_is_off_by_default(client: FlaskClient, path: str) -> None:
    response = client.post(path) if path.endswith("token") else client.get(path)
    assert response.status_code == 404


def test_local_profile_turns_the_console_on(tmp_path: Path) -> None:
    app = make_app(tmp_path, PROFILE="local", FIXTURES_DIR=str(FIXTURES))
    assert app.test_client().get("/console/").status_code == 200


def test_index_lists_every_fixture_patient_with_a_summary(console_client: FlaskClient) -> None:
    html = console_client.get("/console/").get_data(as_text=True)
    for scenario in iter_scenarios(FIXTURES):
        assert f'href="/console/patients/{scenario.name}"' in html
    name, card = scenario_with_delete_suggestion()
    row = re.search(rf"patients/{name}\".*?</tr>", html, re.S)
    assert row and f"{card['recommendationId']} ({card['indicator']})" in row.group(0)
    summary = re.search(r"Dora Trend.*?<td class=\"summary\">(.*?)</td>", html, re.S)
    assert summary, "the trend patient is listed"
    text = summary.group(1)
    assert "Dermatomyositis" in text
    assert "predniSONE 5 MG Oral Tablet" in text
    assert "CK 900 U/L (2 d ago)" in text
    assert "weight 68 kg (3 d ago)" in text


def test_a_broken_fixture_is_named_and_the_others_still_listed(tmp_path: Path) -> None:
    app = console_app(tmp_path)
    broken = Path(app.config["FIXTURES_DIR"]) / "zz-broken"
    broken.mkdir()
    (broken / "request.json").write_text("{not json")
    response = app.test_client().get("/console/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "could not be read" in html and "zz-broken" in html
    assert 'href="/console/patients/console-dm-trend"' in html
    assert app.test_client().get("/console/patients/zz-broken").status_code == 404


def test_patient_page_carries_trends_prefetch_and_drugs(console_client: FlaskClient) -> None:
    response = console_client.get("/console/patients/console-dm-trend")
    assert response.status_code == 200
    data = page_data(response.get_data(as_text=True))
    assert [p["v"] for p in data["trends"]["ck"]] == [float(v) for _, v in CK_VALUES]
    assert {p["uln"] for p in data["trends"]["ck"]} == {CK_ULN}
    assert [p["v"] for p in data["trends"]["weight"]] == [71.0, 69.5, 68.0]
    assert data["services"] == {
        "patient-view": "myopathy-patient-view",
        "order-select": "myopathy-order-select",
        "order-sign": "myopathy-order-sign",
    }
    assert data["prefetch"]["patient"]["id"] == "console-dm"
    names = {d["name"] for d in data["drugs"]}
    assert {"prednisone", "methotrexate", "lorazepam"} <= names
    assert data["ckDefaultUln"] == 200.0


def test_order_scenario_page_starts_with_its_draft_orders(console_client: FlaskClient) -> None:
    name, card = scenario_with_delete_suggestion()
    html = console_client.get(f"/console/patients/{name}").get_data(as_text=True)
    assert "Expected cards for this scenario" in html
    assert escape(card["summary"]) in html
    data = page_data(html)
    assert data["draft"], "the scenario's draft orders are on the page"
    assert data["selections"]


def test_report_page_points_at_the_persistence_report(console_client: FlaskClient) -> None:
    data = page_data(console_client.get("/console/report").get_data(as_text=True))
    assert data["reportUrl"] == "/cds-services/_reports/overrides"


@pytest.mark.parametrize("name", ["nobody", ".hidden", "..", "cau-2-fires%2F..%2F.."])
def test_unknown_patient_is_a_json_404(console_client: FlaskClient, name: str) -> None:
    response = console_client.get(f"/console/patients/{name}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] in ("unknown_patient", "not_found")


def test_console_pages_forbid_inline_script(console_client: FlaskClient) -> None:
    response = console_client.get("/console/patients/console-dm-trend")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    html = response.get_data(as_text=True)
    assert not re.search(r"<script>(?!</script>)", html), "no inline executable script"
    assert not re.search(r'(src|href)="(https?:)?//', html), "every asset is served by the service"


def test_token_has_exactly_the_requested_audience(
    console: Flask, console_client: FlaskClient
) -> None:
    response = mint(console_client, SERVICE_URL)
    assert response.status_code == 200
    token = response.get_json()["token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES384" and header["typ"] == "JWT"
    jwk = console.extensions["cds_console_issuer"].public_jwk()
    claims = jwt.decode(
        token, verification_key(jwk, "ES384"), algorithms=["ES384"], audience=SERVICE_URL
    )
    assert claims["iss"] == CONSOLE_ISS
    assert claims["aud"] == SERVICE_URL
    assert claims["exp"] - claims["iat"] == 60
    assert mint(console_client, SERVICE_URL).get_json()["token"] != token, "a fresh jti each time"


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/cds-services/myopathy-order-select",
        "http://localhost:8081/cds-services/myopathy-order-select",
        "https://localhost/cds-services/myopathy-order-select",
        "http://localhost.evil.example/cds-services",
        f"{SERVICE_URL}?x=1",
        "/cds-services/myopathy-order-select",
        "",
        42,
    ],
)
def test_token_refuses_foreign_urls(console_client: FlaskClient, url: Any) -> None:
    response = mint(console_client, url)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"
    assert "token" not in response.get_json()


def test_token_refuses_other_origins(console_client: FlaskClient) -> None:
    response = mint(console_client, SERVICE_URL, Origin="http://evil.example")
    assert response.status_code == 403
    assert mint(console_client, SERVICE_URL, Origin=BASE).status_code == 200


def test_token_refuses_unknown_host_names(tmp_path: Path) -> None:
    # A DNS-rebinding page reaches the loopback service under its own host name.
    client = console_app(tmp_path).test_client()
    url = "http://evil.example/cds-services/myopathy-order-select"
    response = client.post("/console/api/token", json={"url": url}, base_url="http://evil.example")
    assert response.status_code == 403
    ok = client.post(
        "/console/api/token",
        json={"url": "http://127.0.0.1/cds-services/x"},
        base_url="http://127.0.0.1",
    )
    assert ok.status_code == 200


def test_token_uses_the_public_base_url(tmp_path: Path) -> None:
    app = console_app(tmp_path, PUBLIC_BASE_URL="https://cds.example.org/")
    client = app.test_client()
    assert mint(client, SERVICE_URL).status_code == 400
    via_proxy = client.post(
        "/console/api/token",
        json={"url": "https://cds.example.org/cds-services/x"},
        base_url="https://cds.example.org",
    )
    assert via_proxy.status_code == 200
    url = "https://cds.example.org/cds-services/myopathy-order-select"
    token = mint(client, url).get_json()["token"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == url


def _order_select_body() -> dict[str, Any]:
    return {
        "hook": "order-select",
        "hookInstance": "2f3c2f9e-5d36-4f43-9d55-1c6a9a1f0f1e",
        "context": {
            "userId": "Practitioner/x",
            "patientId": "p",
            "selections": [],
            "draftOrders": {"resourceType": "Bundle", "entry": []},
        },
        "prefetch": {"patient": {"resourceType": "Patient", "id": "p"}, "conditions": None},
    }


def test_minted_token_authorizes_a_real_call_when_auth_is_required(tmp_path: Path) -> None:
    app = console_app(tmp_path, AUTH="required")
    client = app.test_client()
    body = _order_select_body()
    assert client.post("/cds-services/myopathy-order-select", json=body).status_code == 401
    token = mint(client, SERVICE_URL).get_json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (
        client.post("/cds-services/myopathy-order-select", json=body, headers=auth).status_code
        == 200
    )
    replay = client.post("/cds-services/myopathy-order-select", json=body, headers=auth)
    assert replay.status_code == 401, "the jti is used once"
    other = mint(client, f"{BASE}/cds-services/myopathy-patient-view").get_json()["token"]
    wrong_aud = {"Authorization": f"Bearer {other}"}
    assert (
        client.post("/cds-services/myopathy-order-select", json=body, headers=wrong_aud).status_code
        == 401
    )


def test_console_issuer_is_not_trusted_when_the_console_is_off(tmp_path: Path) -> None:
    # Same DATA_DIR, so the same key file: only enabling the console makes the app trust it.
    on = console_app(tmp_path, AUTH="required")
    off = make_app(tmp_path, AUTH="required")
    assert on.config["DATA_DIR"] == off.config["DATA_DIR"]
    issuer = load_console_issuer(off.config["DATA_DIR"])
    headers = issuer.authorization(SERVICE_URL)
    response = off.test_client().post(
        "/cds-services/myopathy-order-select", json=_order_select_body(), headers=headers
    )
    assert response.status_code == 401


def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    first = load_console_issuer(str(tmp_path))
    second = load_console_issuer(str(tmp_path))
    key_file = next(tmp_path.glob("console-issuer-*.pem"))
    assert key_file.stat().st_mode & 0o077 == 0
    assert first.kid == second.kid
    assert first.public_jwk() == second.public_jwk()


def test_drug_picker_uses_the_terminology_and_falls_back_to_fixtures() -> None:
    from_terms = drug_choices(load_terminology(), [])
    prednisone = next(d for d in from_terms if d["name"] == "prednisone")
    assert prednisone["coding"]["code"] == "8640"
    assert prednisone["group"] == "Glucocorticoid"
    from_fixtures = drug_choices(None, iter_scenarios(FIXTURES))
    assert from_fixtures, "fixture drugs when there is no terminology"
    assert all(d["group"] == "From the fixtures" and d["coding"]["code"] for d in from_fixtures)


def test_report_page_shows_the_rollout_modes(tmp_path: Path) -> None:
    policy = tmp_path / "site-policy.json"
    policy.write_text('{"rollout": {"CAU-2": "silent", "REF-1": "off"}}')
    app = make_app(tmp_path, CONSOLE=True, SITE_POLICY_FILE=str(policy))
    html = app.test_client().get("/console/report").get_data(as_text=True)
    rollout = page_data(html)["rollout"]
    assert (rollout["CAU-2"], rollout["REF-1"], rollout["IS-1"]) == ("silent", "off", "active")
