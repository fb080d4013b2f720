"""Helpers for the tester's console tests: a scenario with CK and weight trends, the app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from flask import Flask

from tests.conftest import FIXTURES, make_app

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CK_VALUES = [("@now-60d", 4200), ("@now-40d", 3100), ("@now-20d", 1800), ("@now-2d", 900)]
WEIGHTS = [("@now-60d", 71), ("@now-30d", 69.5), ("@now-3d", 68)]
CK_ULN = 200


def _observation(ident: str, code: str, value: float, unit: str, when: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "subject": {"reference": "Patient/console-dm"},
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    if code == "2157-6":
        resource["referenceRange"] = [{"high": {"value": CK_ULN, "unit": "U/L"}}]
    return resource


def dermatomyositis_bundle() -> dict[str, Any]:
    """A dermatomyositis patient on prednisone whose CK is falling: the console's trend case."""
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": "console-dm",
            "gender": "female",
            "birthDate": "@today-54y",
            "name": [{"given": ["Dora"], "family": "Trend"}],
        },
        {
            "resourceType": "Condition",
            "id": "dm",
            "subject": {"reference": "Patient/console-dm"},
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {
                "coding": [{"system": "http://snomed.info/sct", "code": "396230008"}],
                "text": "Dermatomyositis",
            },
        },
        {
            "resourceType": "MedicationRequest",
            "id": "pred",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/console-dm"},
            "authoredOn": "@now-60d",
            "medicationCodeableConcept": {
                "coding": [
                    {
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "312617",
                        "display": "predniSONE 5 MG Oral Tablet",
                    }
                ],
                "text": "predniSONE 5 MG Oral Tablet",
            },
        },
    ]
    resources += [
        _observation(f"ck{i}", "2157-6", v, "U/L", d) for i, (d, v) in enumerate(CK_VALUES)
    ]
    resources += [_observation(f"w{i}", "29463-7", v, "kg", d) for i, (d, v) in enumerate(WEIGHTS)]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def write_trend_scenario(root: Path) -> Path:
    """fixtures-like directory holding one patient-view scenario with trends."""
    path = root / "console-dm-trend"
    path.mkdir(parents=True)
    (path / "patient.json").write_bytes(orjson.dumps(dermatomyositis_bundle()))
    request = {"hook": "patient-view", "service": "myopathy-patient-view", "context": {}}
    (path / "request.json").write_bytes(orjson.dumps(request))
    return path


def console_fixtures(tmp_path: Path) -> Path:
    """The project's fixtures plus the trend scenario, as symlinks under tmp_path."""
    root = tmp_path / "fixtures"
    root.mkdir()
    for scenario in sorted(FIXTURES.iterdir()):
        if (scenario / "request.json").exists():
            (root / scenario.name).symlink_to(scenario, target_is_directory=True)
    write_trend_scenario(root)
    return root


def console_app(tmp_path: Path, **overrides: Any) -> Flask:
    config: dict[str, Any] = {"CONSOLE": True, "FIXTURES_DIR": str(console_fixtures(tmp_path))}
    config.update(overrides)
    return make_app(tmp_path, **config)


def scenario_with_suggestion(
    action: str, hook: str = "order-select"
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The first fixture of `hook` whose golden card has a suggestion with an `action`."""
    for path in sorted(FIXTURES.iterdir()):
        expected_path = path / "expected.json"
        if not expected_path.exists():
            continue
        request = orjson.loads((path / "request.json").read_bytes())
        if request.get("hook") != hook:
            continue
        for card in orjson.loads(expected_path.read_bytes()):
            for suggestion in card.get("suggestions", []):
                if any(a.get("type") == action for a in suggestion.get("actions", [])):
                    return path.name, card, suggestion
    raise LookupError(f"no {hook} fixture with a {action} suggestion")


def scenario_with_delete_suggestion() -> tuple[str, dict[str, Any]]:
    """An order-select fixture whose golden card deletes a draft order (first one, by name)."""
    name, card, _ = scenario_with_suggestion("delete")
    return name, card
