"""The fixture FHIR server over real HTTP on loopback: R4 read/search, paging, CORS, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cds_service.cli import main
from cds_service.fhir.fixture_server import (
    Faults,
    create_fhir_app,
    create_fixture_wsgi,
    load_store,
    running_server,
)
from cds_service.fhir.store import FixtureStore
from tests.conftest import THIRDPARTY
from tests.fhir_helpers import LOINC, PATIENT_ID, as_bundle, patient_resources


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    store = FixtureStore(patient_resources() + patient_resources("pt-other"))
    with running_server(create_fhir_app(store)) as url:
        yield url


def get(url: str, **params: str) -> requests.Response:
    return requests.get(url, params=params, headers={"Accept": "application/fhir+json"}, timeout=5)


def ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def test_metadata_is_an_r4_capability_statement(base: str) -> None:
    body = get(f"{base}/metadata").json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Patient", "Observation", "MedicationRequest", "ServiceRequest"} <= types


def test_read_by_id_and_unknown_id(base: str) -> None:
    response = get(f"{base}/Patient/{PATIENT_ID}")
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    assert response.json()["id"] == PATIENT_ID
    missing = get(f"{base}/Patient/nobody")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"patient": PATIENT_ID, "code": f"{LOINC}|2157-6"}, 5),
        ({"patient": f"Patient/{PATIENT_ID}", "code": "2157-6"}, 5),
        ({"patient": PATIENT_ID, "code": "http://other.org|2157-6"}, 0),
        ({"patient": PATIENT_ID, "code": f"{LOINC}|2157-6,{LOINC}|29463-7"}, 6),
        ({"patient": PATIENT_ID, "code": f"{LOINC}|2157-6", "date": "ge2026-03-10"}, 3),
        ({"patient": PATIENT_ID, "code": f"{LOINC}|2157-6", "date": "gt2026-03-10"}, 2),
        ({"patient": PATIENT_ID, "code": f"{LOINC}|2157-6", "date": "lt2026-02-01"}, 1),
        ({"patient": PATIENT_ID, "code": f"{LOINC}|2157-6", "date": "le2026-02-10"}, 2),
        ({"patient": PATIENT_ID, "code": f"{LOINC}|2157-6", "date": "2026-04-10"}, 1),
        ({"patient": "pt-other", "code": f"{LOINC}|2157-6"}, 5),
    ],
)
def test_observation_search_parameters(base: str, params: dict, expected: int) -> None:
    body = get(f"{base}/Observation", **params).json()
    assert body["type"] == "searchset"
    assert body["total"] == expected
    assert len(ids(body)) == expected


def test_status_and_clinical_status_tokens(base: str) -> None:
    active = get(f"{base}/MedicationRequest", patient=PATIENT_ID, status="active").json()
    assert ids(active) == [f"mr-{PATIENT_ID}-1"]
    conditions = get(f"{base}/Condition", patient=PATIENT_ID, **{"clinical-status": "active"})
    assert ids(conditions.json()) == [f"cond-{PATIENT_ID}"]
    allergies = get(f"{base}/AllergyIntolerance", patient=PATIENT_ID).json()
    assert ids(allergies) == [f"alg-{PATIENT_ID}"]


def test_sort_descending_date_and_paging_with_next_links(base: str) -> None:
    url = f"{base}/Observation"
    body = get(url, patient=PATIENT_ID, code="2157-6", _sort="-date", _count="2").json()
    seen = ids(body)
    pages = 1
    while nxt := [link["url"] for link in body["link"] if link["relation"] == "next"]:
        assert nxt[0].startswith(base + "/Observation?")
        body = get(nxt[0]).json()
        seen += ids(body)
        pages += 1
    assert pages == 3
    assert seen == [f"ck-{PATIENT_ID}-{i}" for i in (4, 3, 2, 1, 0)]


def test_post_search_form_encoded_like_the_sandbox(base: str) -> None:
    response = requests.post(
        f"{base}/Observation/_search",
        data={"patient": PATIENT_ID, "code": f"{LOINC}|29463-7"},
        timeout=5,
    )
    assert response.status_code == 200
    assert ids(response.json()) == [f"wt-{PATIENT_ID}"]


def test_unsupported_parameter_is_a_400_outcome(base: str) -> None:
    response = get(f"{base}/Observation", patient=PATIENT_ID, **{"value-quantity": "gt5"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_cors_preflight_for_the_sandbox(base: str) -> None:
    response = requests.options(
        f"{base}/Observation/_search",
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
        },
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(
    ("mode", "status"), [("5xx", 503), ("429", 429), ("malformed", 200), ("timeout", 504)]
)
def test_fault_modes(mode: str, status: int) -> None:
    faults = Faults(mode=mode, rate=1.0, timeout_sleep=0.3, retry_after=7)
    store = FixtureStore(patient_resources())
    with running_server(create_fhir_app(store, faults)) as url:
        started = time.monotonic()
        response = get(f"{url}/Patient/{PATIENT_ID}")
        elapsed = time.monotonic() - started
        assert get(f"{url}/metadata").status_code == 200  # metadata is never faulted
    assert response.status_code == status
    if mode == "429":
        assert response.headers["Retry-After"] == "7"
    if mode == "malformed":
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.text)
    if mode == "timeout":
        assert elapsed >= 0.3


def test_fault_rate_is_spread_evenly_and_can_target_one_type() -> None:
    faults = Faults(mode="5xx", rate=0.5, only_types=frozenset({"Observation"}))
    store = FixtureStore(patient_resources())
    with running_server(create_fhir_app(store, faults)) as url:
        obs = [get(f"{url}/Observation", patient=PATIENT_ID).status_code for _ in range(4)]
        pats = [get(f"{url}/Patient/{PATIENT_ID}").status_code for _ in range(2)]
    assert obs == [503, 200, 503, 200]
    assert pats == [200, 200]


def test_latency_is_injected() -> None:
    store = FixtureStore(patient_resources())
    with running_server(create_fhir_app(store, Faults(latency_ms=120))) as url:
        started = time.monotonic()
        get(f"{url}/Patient/{PATIENT_ID}")
        assert time.monotonic() - started >= 0.12


def test_required_token() -> None:
    store = FixtureStore(patient_resources())
    with running_server(create_fhir_app(store, required_token="tok")) as url:
        assert get(f"{url}/Patient/{PATIENT_ID}").status_code == 401
        ok = requests.get(
            f"{url}/Patient/{PATIENT_ID}", headers={"Authorization": "Bearer tok"}, timeout=5
        )
        assert ok.status_code == 200


def test_synthea_transaction_bundle_references_are_searchable(tmp_path: Path) -> None:
    path = THIRDPARTY / "synthea_r4_Hershel_Marvin_71a7f9d4-45b7-481b-b571-7ee0caca6e2a.json"
    store = load_store(None, [path])
    patient_id = store.by_type["Patient"][0]["id"]
    with running_server(create_fhir_app(store)) as url:
        body = get(f"{url}/MedicationRequest", patient=patient_id)
        codes = {
            c["code"]
            for e in body.json()["entry"]
            for c in e["resource"]["medicationCodeableConcept"]["coding"]
        }
    assert "105586" in codes  # methotrexate 10 MG oral tablet


def test_fixture_directory_loading(tmp_path: Path) -> None:
    scenario = tmp_path / "some-scenario"
    scenario.mkdir()
    (scenario / "patient.json").write_text(json.dumps(as_bundle(patient_resources())))
    store = load_store(tmp_path)
    assert store.read("Patient", PATIENT_ID) is not None
    assert len(store.by_type["Observation"]) == 6


def test_cli_without_fixtures_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fhir-server", "--fixtures", str(tmp_path), "--port", "0"]) == 2
    assert "no fixtures found" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options", [["--fault-rate", "1.5"], ["--fault-on", "Claim"], ["--fault", "explode"]]
)
def test_cli_rejects_bad_fault_options(options: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fhir-server", *options])
    assert info.value.code == 2


def test_each_scenario_is_its_own_base_and_the_root_serves_the_union() -> None:
    a = FixtureStore([{"resourceType": "Patient", "id": "same", "gender": "female"}])
    b = FixtureStore(
        [
            {"resourceType": "Patient", "id": "same", "gender": "male"},
            {"resourceType": "Patient", "id": "only-b"},
        ]
    )
    with running_server(create_fixture_wsgi({"a": a, "b": b})) as url:
        assert get(f"{url}/a/Patient/same").json()["gender"] == "female"
        assert get(f"{url}/b/Patient/same").json()["gender"] == "male"
        assert get(f"{url}/a/Patient/only-b").status_code == 404
        assert get(f"{url}/Patient/only-b").status_code == 200
        assert get(f"{url}/Patient", _id="same").json()["total"] == 1
        page = get(f"{url}/b/Patient", _count="1").json()
        (next_url,) = [link["url"] for link in page["link"] if link["relation"] == "next"]
        assert next_url.startswith(f"{url}/b/Patient?")
