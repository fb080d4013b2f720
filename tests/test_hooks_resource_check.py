"""The resources a card suggests are checked with FHIR R4 models at run time."""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.fhir.scenarios import build_request, load_scenario
from cds_service.guideline.knowledge import load_knowledge
from cds_service.guideline.resources import medication_request, service_request
from cds_service.hooks import resource_check
from cds_service.hooks.resource_check import suggested_resource_problem
from fhir_mappings.dates import parse_fhir_date
from tests.conftest import FIXTURES, ROOT
from tests.mapping_builders import MOMENTS

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def _medication(patient: str = "p1", now: datetime = NOW) -> dict[str, Any]:
    return medication_request(
        load_knowledge(),
        drug="prednisone",
        mg=60,
        route="oral",
        period=1,
        period_unit="d",
        text="60 mg once daily",
        patient_id=patient,
        now=now,
    )


def test_the_resources_the_rules_build_are_valid_r4() -> None:
    knowledge = load_knowledge()
    referral = service_request(
        knowledge.physio_referral, patient_id="p1", now=NOW, reason="PT-1", category=None
    )
    assert suggested_resource_problem(_medication()) is None
    assert suggested_resource_problem(referral) is None


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda r: r["dosageInstruction"][0].update(doseQuantity={"value": 5}), "doseQuantity"),
        (lambda r: r.update(dosageInstruction={"text": "secret-text"}), "dosageInstruction"),
        (lambda r: r.update(authoredOn="2026-02-30T10:00:00Z"), "authoredOn"),
        (lambda r: r.update(authoredOn="2026-06-01T10:00:00"), "authoredOn"),
    ],
)
def test_an_invalid_resource_is_named_without_its_values(change: Any, where: str) -> None:
    resource = _medication()
    change(resource)
    problem = suggested_resource_problem(resource)
    assert problem is not None and where in problem
    assert "secret-text" not in problem


def test_only_medication_and_service_requests_may_be_suggested() -> None:
    problem = suggested_resource_problem({"resourceType": "Patient", "id": "x"})
    assert problem is not None and "Patient" in problem
    assert suggested_resource_problem(["not", "a", "resource"]) is not None


def test_a_verdict_is_remembered_across_patients_and_times_but_not_for_bad_dates() -> None:
    resource_check.VERDICTS.clear()
    assert suggested_resource_problem(_medication("p1")) is None
    hits = resource_check.VERDICTS.hits
    later = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert suggested_resource_problem(_medication("another-patient", later)) is None
    assert resource_check.VERDICTS.hits == hits + 1
    bad = _medication("p1")
    bad["authoredOn"] = "2026-13-01T10:00:00Z"
    assert suggested_resource_problem(bad) is not None


def _referral(reason: str, patient: str = "p1") -> dict[str, Any]:
    knowledge = load_knowledge()
    return service_request(
        knowledge.physio_referral, patient_id=patient, now=NOW, reason=reason, category=None
    )


def test_a_verdict_is_remembered_across_patients_whose_reason_texts_differ() -> None:
    """The physiotherapy referral's reason quotes the patient's CK: one check, not one a chart."""
    resource_check.VERDICTS.clear()
    assert suggested_resource_problem(_referral("Latest CK 438.4 U/L (2026-03-23)")) is None
    misses = resource_check.VERDICTS.misses
    second = _referral("Latest CK 1576.2 U/L (2026-04-01); peak 3528.2 U/L", "p2")
    assert suggested_resource_problem(second) is None
    assert resource_check.VERDICTS.misses == misses


_PLAIN_MEDICATION = _medication()
_TEXT_PLACES = {
    "CodeableConcept.text": lambda r, t: r["reasonCode"].append({"text": t}),
    "Annotation.text (markdown)": lambda r, t: r.update(note=[{"text": t}]),
    "Dosage.text": lambda r, t: r["dosageInstruction"][0].update(text=t),
    "Narrative (an object)": lambda r, t: r.update(text=t),
}


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=12) | st.sampled_from(["", " ", " x", "x ", "a\nb", "\u00a0"]))
@pytest.mark.parametrize("place", list(_TEXT_PLACES))
def test_a_text_shares_a_verdict_only_with_texts_of_the_same_verdict(place: str, text: str) -> None:
    """Sound memo: two resources with one key have one verdict, whatever the text's element."""
    resources = []
    for value in (text, "-"):
        resource = copy.deepcopy(_PLAIN_MEDICATION)
        resource["reasonCode"] = []
        _TEXT_PLACES[place](resource, value)
        resources.append(resource)
    if resource_check._key(resources[0]) == resource_check._key(resources[1]):
        assert resource_check._validate(resources[0]) == resource_check._validate(resources[1])


def _key_piece_by_parsing(value: str) -> bytes:
    """What a verdict's key keeps of authoredOn, read by parse_fhir_date alone."""
    parsed = parse_fhir_date(value)
    if parsed is None or (parsed.has_time and parsed.offset is None):
        return b'"authoredOn":"' + value.encode() + b'"'
    return b'"authoredOn":"' + parsed.precision.encode() + b'"'


@settings(max_examples=500, deadline=None)
@given(value=MOMENTS)
def test_authored_on_is_blanked_in_a_verdicts_key_as_the_date_parser_reads_it(value: str) -> None:
    raw = f'"authoredOn":"{value}"'.encode()
    found = resource_check._AUTHORED.search(raw)
    assert found is not None
    assert resource_check._blank_authored(found) == _key_piece_by_parsing(value)


def _stu3_dose(body: dict[str, Any]) -> None:
    """The draft's dose written the STU3 way (Dosage.doseQuantity), which R4 refuses."""
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    dosage = draft["dosageInstruction"][0]
    dosage["doseQuantity"] = dosage.pop("doseAndRate")[0]["doseQuantity"]


def test_a_suggestion_whose_resource_is_not_r4_is_dropped_and_the_card_kept(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = load_scenario(FIXTURES / "is-2-daily-methotrexate-any-patient")
    body = build_request(scenario, app.extensions["cds_registry"])
    sent = client.post("/cds-services/myopathy-order-select", json=body).get_json()
    assert [c["suggestions"][0]["actions"][0]["type"] for c in sent["cards"]] == ["update"]

    stu3 = copy.deepcopy(body)
    _stu3_dose(stu3)
    with caplog.at_level(logging.ERROR, logger="cds_service"):
        response = client.post("/cds-services/myopathy-order-select", json=stu3)
    assert response.status_code == 200
    (card,) = response.get_json()["cards"]
    assert card["indicator"] == "critical" and "weekly" in card["summary"]
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert "not valid R4 (IS-2)" in caplog.text and "doseQuantity" in caplog.text


_PROBE = """
import sys, tempfile
from cds_service import create_app
from cds_service.fhir.scenarios import build_request, load_scenario
from pathlib import Path
app = create_app({"AUTH": "disabled", "DATA_DIR": tempfile.mkdtemp(), "LOG_LEVEL": "ERROR"})
client = app.test_client()
client.get("/cds-services"); client.get("/healthz")
print("fhir.resources" in sys.modules)
scenario = load_scenario(Path(sys.argv[1]) / "is-1-fires")
client.post("/cds-services/myopathy-patient-view",
            json=build_request(scenario, app.extensions["cds_registry"]))
print("fhir.resources" in sys.modules)
"""


def test_fhir_models_load_only_when_a_card_suggests_a_resource(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("CDS_")}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(FIXTURES)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["False", "True"]
