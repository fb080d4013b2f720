"""Value-set and unit data files: loaded, versioned, sourced and validated."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from fhir_mappings import TerminologyError, load_terminology
from fhir_mappings.terminology import build_terminology
from tests.mapping_builders import LOINC, RXNORM


def _docs() -> tuple[dict[str, Any], dict[str, Any]]:
    from importlib import resources

    data = resources.files("fhir_mappings.data")
    return (
        yaml.safe_load(data.joinpath("terminology.yaml").read_text("utf-8")),
        yaml.safe_load(data.joinpath("units.yaml").read_text("utf-8")),
    )


def test_loaded_once_versioned_and_every_code_sourced() -> None:
    term = load_terminology()
    assert load_terminology() is term
    assert term.version and term.units_version
    assert len(term.codes) > 100
    assert all(c.source.strip() for c in term.codes)


@pytest.mark.parametrize(
    ("system", "code", "verified"),
    [
        (RXNORM, "6851", True),  # methotrexate: cpic-schema
        (RXNORM, "8640", False),  # prednisone: CODES.md says verify
        (LOINC, "2157-6", True),
        (LOINC, "11565-9", False),  # antibodies: verify
        (LOINC, "11524-6", False),  # ECG: chosen here, verify
        ("http://snomed.info/sct", "396230008", False),
        ("http://snomed.info/sct", "306170007", True),  # VSAC referral value set
        ("http://snomed.info/sct", "50920009", True),  # myocarditis, public code lists
    ],
)
def test_verify_flags_follow_codes_md(system: str, code: str, verified: bool) -> None:
    term = load_terminology()
    assert any(c.system == system and c.code == code for c in term.codes)
    assert term.is_verified(system, code) is verified


def test_registry_prefetch_codes_are_in_the_value_sets() -> None:
    from cds_service.guideline.needs import LAB_CODES, VITAL_CODES, WEIGHT_CODES

    term = load_terminology()
    known = {c for (s, c) in term.observation_codes if s == LOINC} | {
        c for (s, c) in term.panel_codes
    }
    assert set(LAB_CODES) | set(VITAL_CODES) | set(WEIGHT_CODES) <= known


Mutation = Callable[[dict[str, Any], dict[str, Any]], None]
BROKEN: list[tuple[str, Mutation, str]] = [
    ("no version", lambda t, u: t.pop("version"), "version"),
    (
        "code without source",
        lambda t, u: t["observations"]["ck"]["codes"][0].pop("source"),
        "2157-6: no source",
    ),
    (
        "verify not boolean",
        lambda t, u: t["observations"]["ck"]["codes"][0].update(verify="maybe"),
        "verify",
    ),
    (
        "unknown system alias",
        lambda t, u: t["observations"]["ck"]["codes"][0].update(system="lonic"),
        "lonic",
    ),
    ("unknown quantity", lambda t, u: t["observations"]["ck"].update(quantity="volts"), "volts"),
    (
        "code in two kinds",
        lambda t, u: t["observations"]["aldolase"]["codes"].append(
            dict(t["observations"]["ck"]["codes"][0])
        ),
        "already in another kind",
    ),
    (
        "unknown drug class",
        lambda t, u: t["ingredients"]["prednisone"].update({"class": "steroid"}),
        "steroid",
    ),
    ("missing domain class", lambda t, u: t["drug_classes"].pop("nsaid"), "every domain class"),
    (
        "unknown condition category",
        lambda t, u: t["conditions"][0].update(categories=["myopathyy"]),
        "myopathyy",
    ),
    ("prefix on SNOMED", lambda t, u: t["conditions"][0].update(prefix=True), "ICD-10 only"),
    ("bad severity", lambda t, u: t["condition_severity"][0].update(severity="grave"), "grave"),
    (
        "negative factor",
        lambda t, u: u["quantities"]["body_mass"]["units"]["g"].update(factor=-1),
        "positive",
    ),
    (
        "canonical factor not 1",
        lambda t, u: u["quantities"]["body_mass"]["units"]["kg"].update(factor=2),
        "factor 1",
    ),
    (
        "units differing by case",
        lambda t, u: u["quantities"]["body_mass"]["units"].update(KG={"factor": 3, "source": "x"}),
        "differing only by case",
    ),
    (
        "unit without source",
        lambda t, u: u["quantities"]["body_mass"]["units"]["g"].pop("source"),
        "source",
    ),
    ("not a mapping", lambda t, u: t.update(observations=[1, 2]), "expected a mapping"),
]


@pytest.mark.parametrize(("mutate", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_data_is_refused_with_the_problem_named(mutate: Mutation, message: str) -> None:
    terms, units = (copy.deepcopy(d) for d in _docs())
    build_terminology(terms, units)  # the shipped data is valid
    mutate(terms, units)
    with pytest.raises(TerminologyError, match=message.replace("(", r"\(")) as info:
        build_terminology(terms, units)
    assert isinstance(info.value, ValueError)
