"""`cds-service capture deidentify`: no original ids, names or dates; same cards."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.cli import main
from cds_service.fhir.scenarios import build_request, compare_cards, load_scenario
from cds_service.fhir.timeshift import EMBEDDED_DATE, Shift, shift_dates
from cds_service.governance.deidentify import Pseudonyms, deidentify_dir
from tests.conftest import FIXTURES, make_app

# Cases with draft orders and selections, suggested deletes by resourceId, weights, CK trends.
CASES = ("cau-1-fires", "cau-2-fires", "is-1-fires", "mon-1-fires-rising", "pt-1-fires")
SCENARIOS = {name: load_scenario(FIXTURES / name) for name in CASES}
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5"


@pytest.fixture(scope="module")
def apps() -> Iterator[tuple[Flask, Flask]]:
    """One app that captures, one that only answers (module-wide: hypothesis runs many)."""
    root = Path(tempfile.mkdtemp(prefix="cds-deid-"))
    try:
        yield make_app(root / "a", CAPTURE_DIR=str(root / "captures")), make_app(root / "b")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def scenario_text(name: str) -> str:
    scenario = SCENARIOS[name]
    return json.dumps([scenario.request, scenario.patient_bundle]).lower()


@st.composite
def identities(draw: st.DrawFn) -> dict[str, Any]:
    """A patient and clinician as a hospital would send them, not words the case uses."""
    name = draw(st.sampled_from(CASES))
    text = scenario_text(name)

    def fresh(strategy: st.SearchStrategy[str]) -> str:
        return draw(strategy.filter(lambda s: s.lower() not in text))

    return {
        "case": name,
        "patient": fresh(st.from_regex(r"[a-z][a-z0-9]{5,15}", fullmatch=True)),
        "mrn": fresh(st.from_regex(r"[0-9]{7,10}", fullmatch=True)),
        "family": fresh(st.from_regex(r"[A-Z][a-z]{3,10}", fullmatch=True)),
        "given": fresh(st.from_regex(r"[A-Z][a-z]{3,10}", fullmatch=True)),
        "clinician": fresh(st.from_regex(r"[a-z][a-z0-9]{5,12}", fullmatch=True)),
        "days": draw(st.integers(-4000, 4000)),
    }


def hook_body(app: Flask, who: dict[str, Any]) -> dict[str, Any]:
    scenario = SCENARIOS[who["case"]]
    body = build_request(scenario, app.extensions["cds_registry"])
    body = json.loads(json.dumps(body).replace("fx-patient", who["patient"]))
    patient = body["prefetch"]["patient"]
    patient["name"] = [{"use": "official", "family": who["family"], "given": [who["given"]]}]
    patient["identifier"] = [{"system": MRN_SYSTEM, "value": who["mrn"]}]
    patient["telecom"] = [{"system": "phone", "value": "+1 555 0100"}]
    patient["address"] = [{"line": ["1 Main Street"], "city": "Springfield"}]
    body["context"]["userId"] = f"Practitioner/{who['clinician']}"
    return body


def capture(app: Flask, body: dict[str, Any], service_id: str, root: Path) -> Path:
    writer = app.extensions["cds_capture"]
    root.mkdir(parents=True, exist_ok=True)
    writer.root = root
    response = app.test_client().post(f"/cds-services/{service_id}", json=body)
    assert response.status_code == 200
    assert writer.flush()
    [case] = [p for p in root.iterdir() if not p.name.startswith(".")]
    return case


def word(text: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(text)}(?![A-Za-z0-9])", re.IGNORECASE)


def texts(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.rglob("*.json")))


def answers(app: Flask, case: Path) -> list[str]:
    scenario = load_scenario(case)
    body = build_request(scenario, app.extensions["cds_registry"])
    response = app.test_client().post(f"/cds-services/{scenario.service_id}", json=body)
    assert response.status_code == 200
    return compare_cards(scenario.expected or [], response.get_json()["cards"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(who=identities())
def test_deidentified_captures_keep_no_identity_and_give_the_same_cards(
    apps: tuple[Flask, Flask], who: dict[str, Any]
) -> None:
    capturing, answering = apps
    work = Path(tempfile.mkdtemp(prefix="cds-deid-case-"))
    try:
        scenario = SCENARIOS[who["case"]]
        case = capture(capturing, hook_body(capturing, who), scenario.service_id, work / "captured")
        # As if captured `days` earlier or later: the case's dates are the hospital's dates.
        request = case / "request.json"
        request.write_text(
            json.dumps(shift_dates(json.loads(request.read_text()), Shift.by_days(who["days"])))
        )
        for file in ("patient.json",):
            path = case / file
            path.write_text(
                json.dumps(shift_dates(json.loads(path.read_text()), Shift.by_days(who["days"])))
            )
        original = texts(case)
        dates = {m.group(0)[:10] for m in EMBEDDED_DATE.finditer(original)}
        assert dates and who["patient"] in original and who["family"] in original
        assert answers(answering, case) == []  # the capture itself replays

        [clean] = deidentify_dir(work / "captured", work / "clean")
        result = texts(clean)
        for secret in ("patient", "mrn", "clinician", "family", "given"):
            # As a word: a pseudonym's hex may contain "aaaa" without revealing "Aaaa".
            assert not word(who[secret]).search(result), secret
        assert "555 0100" not in result and "Main Street" not in result
        left = sorted(d for d in dates if d in result)
        assert not left, f"original dates remain: {left}"
        assert answers(answering, clean) == []  # and so does its de-identified copy
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_same_patient_gets_the_same_pseudonyms_and_shift_in_every_case(
    apps: tuple[Flask, Flask], tmp_path: Path
) -> None:
    capturing, _ = apps
    who = {
        "case": "cau-1-fires",
        "patient": "pat0042x",
        "mrn": "12345678",
        "family": "Quimby",
        "given": "Harriet",
        "clinician": "drwho77",
        "days": 0,
    }
    for index, name in enumerate(("cau-1-fires", "is-1-fires")):
        case = capture(
            capturing,
            hook_body(capturing, {**who, "case": name}),
            SCENARIOS[name].service_id,
            tmp_path / f"run{index}",
        )
        shutil.move(case, tmp_path / "captured" / case.name)
    cleaned = deidentify_dir(tmp_path / "captured", tmp_path / "clean", Pseudonyms())
    ids, births = set(), set()
    for case in cleaned:
        request = json.loads((case / "request.json").read_text())
        ids.add(request["context"]["patientId"])
        births.add(request["prefetch"]["patient"]["birthDate"])
        assert request["prefetch"]["patient"]["name"][0]["family"].startswith("Anon")
    assert len(ids) == 1 and len(births) == 1
    assert ids != {"pat0042x"}


def test_the_command_writes_next_to_the_captures(
    apps: tuple[Flask, Flask], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capturing, _ = apps
    scenario = SCENARIOS["cau-2-fires"]
    body = build_request(scenario, capturing.extensions["cds_registry"])
    capture(capturing, body, scenario.service_id, tmp_path / "captures")
    assert main(["capture", "deidentify", str(tmp_path / "captures")]) == 0
    assert "de-identified 1 case(s)" in capsys.readouterr().out
    out = tmp_path / "captures-deidentified"
    [case] = list(out.iterdir())
    assert main(["replay", "--check", str(case)]) == 0
    assert "fx-patient" not in texts(out)
    assert main(["capture", "deidentify", str(tmp_path / "captures")]) == 2  # output not empty
    assert "not empty" in capsys.readouterr().err


def test_fetched_bundles_links_and_free_text_lose_the_patient(tmp_path: Path) -> None:
    """What a fetch leaves behind: search links and full URLs naming the patient, notes."""
    case = tmp_path / "captured" / "patient-view-1"
    case.mkdir(parents=True)
    patient = {
        "resourceType": "Patient",
        "id": "pt-778899",
        "name": [{"text": "Harriet Quimby", "family": "Quimby", "given": ["Harriet"]}],
        "birthDate": "1961-04-02",
    }
    conditions = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [
            {"relation": "self", "url": "https://ehr.example/fhir/Condition?patient=pt-778899"}
        ],
        "entry": [
            {
                "fullUrl": "https://ehr.example/fhir/Condition/c1",
                "resource": {
                    "resourceType": "Condition",
                    "id": "c1",
                    "subject": {"reference": "Patient/pt-778899", "display": "Harriet Quimby"},
                    "code": {"text": "Dermatomyositis"},
                    "note": [{"text": "Seen by Dr Quimby's team on 2024-03-01; MRN pt-778899"}],
                    "onsetDateTime": "2024-02-28T09:30:00+01:00",
                },
            }
        ],
    }
    request = {
        "hook": "patient-view",
        "service": "myopathy-patient-view",
        "capturedAt": "2024-03-05T10:00:00Z",
        "context": {"userId": "Practitioner/dr-5566", "patientId": "pt-778899"},
        "prefetch": {"patient": patient, "conditions": conditions},
    }
    (case / "request.json").write_text(json.dumps(request))
    [clean] = deidentify_dir(tmp_path / "captured", tmp_path / "clean")
    result = texts(clean)
    for original in (
        "pt-778899",
        "Quimby",
        "Harriet",
        "dr-5566",
        "2024-03-01",
        "2024-02-28",
        "1961-04-02",
        "2024-03-05",
    ):
        assert not word(original).search(result), original
    out = json.loads((clean / "request.json").read_text())
    condition = out["prefetch"]["conditions"]["entry"][0]["resource"]
    assert condition["code"] == {"text": "Dermatomyositis"}  # clinical content kept
    assert condition["subject"]["reference"] == "Patient/" + out["context"]["patientId"]
    assert out["prefetch"]["patient"]["id"] == out["context"]["patientId"]
    # The onset keeps its zone and its distance to the capture time.
    onset = datetime.fromisoformat(condition["onsetDateTime"])
    captured = datetime.fromisoformat(out["capturedAt"].replace("Z", "+00:00"))
    assert captured - onset == timedelta(days=6, hours=1, minutes=30)  # 2024 is a leap year
    assert condition["onsetDateTime"].endswith("T09:30:00+01:00")
