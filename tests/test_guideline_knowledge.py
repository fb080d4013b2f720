"""Knowledge loading: validation refuses bad content by name; site policy overrides work."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.errors import ConfigError
from cds_service.guideline import load_engine
from cds_service.guideline.knowledge import RULE_IDS, parse_knowledge


def raw() -> Any:
    text = resources.files("cds_service.guideline").joinpath("data/knowledge.yaml").read_text()
    return yaml.safe_load(text)


def test_shipped_knowledge_loads_with_every_recommendation() -> None:
    engine = load_engine("")
    assert engine.version == raw()["version"]
    assert set(engine.knowledge.recommendations) == set(RULE_IDS)
    assert engine.knowledge.p("prednisone_max_mg_per_day") == 80


def _drop(doc: Any, path: str) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        doc = doc[key]
    del doc[leaf]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: _drop(d, "version"), "version is missing"),
        (lambda d: _drop(d, "recommendations.CAU-2"), "missing ['CAU-2']"),
        (lambda d: d["recommendations"].update({"XYZ-9": {}}), "unknown ['XYZ-9']"),
        (lambda d: d["recommendations"]["CAU-2"].update(refs=[9]), "unknown ref 9"),
        (lambda d: d["recommendations"]["CAU-2"].update(scope="nobody"), "is not a scope"),
        (lambda d: d["recommendations"]["CAU-2"].update(hooks=["order-dispatch"]), "hooks"),
        (lambda d: d["site_policy"]["refractory_weeks"].update(default=9), "outside 4..6"),
        (lambda d: d["orderables"]["routes"]["oral"].update(system="made-up"), "unknown"),
        (
            lambda d: d["recommendations"]["IS-1"].update(override_reasons=["why-not"]),
            "unknown reason",
        ),
        # the guideline's own numbers, the card notes and the fold list
        (lambda d: _drop(d, "guideline_numbers.rituximab_effect_weeks"), "rituximab_effect"),
        (lambda d: _drop(d, "notes.troponin_analytes.source"), "source is missing"),
        (lambda d: d["value_sets"].update(fold_info=["MON-9"]), "fold_info"),
        (lambda d: _drop(d, "value_sets.cardiac_specific_troponins"), "cardiac_specific"),
        (lambda d: d["site_policy"]["override_snooze_days"].update(default=120), "outside"),
    ],
)
def test_invalid_knowledge_is_refused_naming_the_problem(mutate: Any, message: str) -> None:
    doc = copy.deepcopy(raw())
    mutate(doc)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_knowledge(doc)


def test_site_policy_file_overrides_known_keys(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"prednisone_max_mg_per_day": 60}))
    engine = load_engine(str(path))
    setting = engine.knowledge.policy["prednisone_max_mg_per_day"]
    assert (setting.value, setting.default, setting.overridden) == (60, 80, True)


def test_site_policy_env_variable_is_used(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("muscle_relaxant_max_days: 14\n")
    monkeypatch.setenv("CDS_SITE_POLICY_FILE", str(path))
    assert load_engine().knowledge.p("muscle_relaxant_max_days") == 14


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("unknown_key: 3\n", "unknown setting 'unknown_key'"),
        ("prednisone_max_mg_per_day: lots\n", "must be a number"),
        ("prednisone_max_mg_per_day: 5000\n", "outside"),
        ("- a list\n", "must hold a mapping"),
        ("{: bad yaml", "not valid YAML/JSON"),
    ],
)
def test_bad_site_policy_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_engine(str(path))


def test_missing_site_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_engine(str(tmp_path / "nope.yaml"))
