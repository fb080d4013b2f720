"""Prefetch templates derive from the knowledge: adding a lab to it adds it to discovery."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from flask.testing import FlaskClient

from cds_service.errors import ConfigError
from cds_service.guideline import GuidelineEngine
from cds_service.guideline.knowledge import parse_knowledge
from cds_service.hooks.services import build_registry
from fhir_mappings import load_terminology

LOINC = "http://loinc.org"


def shipped() -> dict[str, Any]:
    text = resources.files("cds_service.guideline").joinpath("data/knowledge.yaml").read_text()
    return copy.deepcopy(yaml.safe_load(text))


def discovered_codes(raw: dict[str, Any], key: str) -> set[str]:
    """The codes the discovery document's `key` template asks for, for every service."""
    registry = build_registry(GuidelineEngine(parse_knowledge(raw)))
    found = [set(parse_qs(urlsplit(s.prefetch[key]).query)["code"][0].split(",")) for s in registry]
    assert all(codes == found[0] for codes in found)
    return found[0]


def kind_codes(kind: str) -> set[str]:
    term = load_terminology()
    return {f"{s}|{c}" for (s, c), k in term.observation_codes.items() if k.kind == kind}


def test_adding_a_workup_lab_to_the_knowledge_adds_it_to_discovery() -> None:
    raw = shipped()
    assert not kind_codes("anti_jo1") & discovered_codes(raw, "labs")
    raw["orderables"]["workup"].append(
        {
            "key": "anti_jo1",
            "label": "Anti-Jo-1 antibody",
            "kinds": ["anti_jo1"],
            "order": {"system": "loinc", "code": "11565-9", "display": "Jo-1 Ab"},
        }
    )
    assert kind_codes("anti_jo1") <= discovered_codes(raw, "labs")
    assert f"{LOINC}|11565-9" in discovered_codes(raw, "labs")


def test_adding_a_kind_to_a_value_set_adds_its_codes_to_that_key() -> None:
    raw = shipped()
    raw["value_sets"]["weight_kinds"] = ["weight", "height"]
    assert discovered_codes(raw, "weight") == {f"{LOINC}|29463-7", f"{LOINC}|8302-2"}


def test_the_shipped_discovery_asks_for_every_kind_the_knowledge_names() -> None:
    raw = shipped()
    workup = {kind for item in raw["orderables"]["workup"] for kind in item["kinds"]}
    labs = set().union(*(kind_codes(k) for k in workup | {"ck", "troponin"}))
    assert discovered_codes(raw, "labs") == labs
    vitals = {"bp_systolic", "bp_diastolic", "glucose", "hba1c"}
    panels = {f"{s}|{c}" for s, c in load_terminology().panels["blood_pressure"]}
    expected = set().union(panels, *(kind_codes(k) for k in vitals))
    assert discovered_codes(raw, "vitals") == expected


def test_the_discovery_endpoint_serves_the_derived_templates(client: FlaskClient) -> None:
    services = client.get("/cds-services").get_json()["services"]
    for service in services:
        labs = parse_qs(urlsplit(service["prefetch"]["labs"]).query)["code"][0].split(",")
        assert set(labs) == discovered_codes(shipped(), "labs")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["value_sets"].update(height_kinds=["height"]), "height_kinds"),
        (lambda r: r["prefetch_observations"]["labs"].update(value_sets=["nope_kinds"]), "nope"),
        (lambda r: r["prefetch_observations"].pop("weight"), "weight_kinds"),
    ],
)
def test_a_kind_value_set_no_key_asks_for_stops_the_start(change: Any, message: str) -> None:
    raw = shipped()
    change(raw)
    with pytest.raises(ConfigError, match=message):
        parse_knowledge(raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["value_sets"].update(weight_kinds=["wieght"]), "wieght"),
        (lambda r: r["prefetch_observations"]["vitals"].update(panels=["bp"]), "bp"),
    ],
)
def test_a_kind_or_panel_without_codes_stops_the_start(change: Any, message: str) -> None:
    raw = shipped()
    change(raw)
    with pytest.raises(ConfigError, match=message):
        build_registry(GuidelineEngine(parse_knowledge(raw)))
