"""The order composer's drug picker: the guideline's drug value sets, else the fixtures' drugs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from cds_service.fhir.scenarios import Scenario

log = logging.getLogger("cds_service.console")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CLASS_LABELS = {
    "glucocorticoid": "Glucocorticoid",
    "methotrexate": "Methotrexate",
    "mycophenolate": "Mycophenolate",
    "ivig": "Immune globulin",
    "rituximab": "Rituximab",
    "cyclophosphamide": "Cyclophosphamide",
    "jak_inhibitor": "JAK inhibitor",
    "muscle_relaxant": "Muscle relaxant",
    "nsaid": "NSAID",
    "benzodiazepine": "Benzodiazepine",
}


def _from_terminology(terminology: Any) -> list[dict[str, Any]]:
    """One entry per ingredient of the value sets, coded by its RxNorm ingredient when known."""
    classes: dict[str, str] = dict(getattr(terminology, "ingredient_class", {}) or {})
    by_name = {
        name: code for code, name in (getattr(terminology, "rxnorm_ingredients", {}) or {}).items()
    }
    system = getattr(terminology, "rxnorm", RXNORM)
    drugs = []
    for ingredient, drug_class in classes.items():
        coding = {"display": ingredient}
        if ingredient in by_name:
            coding = {"system": system, "code": by_name[ingredient], "display": ingredient}
        drugs.append(
            {
                "name": ingredient,
                "group": CLASS_LABELS.get(drug_class, drug_class),
                "coding": coding,
            }
        )
    return drugs


def _medication_requests(scenario: Scenario) -> Iterable[dict[str, Any]]:
    yield from (r for r in scenario.resources if r.get("resourceType") == "MedicationRequest")
    drafts = scenario.request.get("context", {}).get("draftOrders") or {}
    for entry in drafts.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "MedicationRequest":
            yield resource


def _from_scenarios(scenarios: Iterable[Scenario]) -> list[dict[str, Any]]:
    """Every coded drug the fixture patients are on or are being ordered."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for scenario in scenarios:
        for request in _medication_requests(scenario):
            concept = request.get("medicationCodeableConcept") or {}
            for coding in concept.get("coding") or []:
                key = (str(coding.get("system")), str(coding.get("code")))
                name = coding.get("display") or concept.get("text") or coding.get("code")
                if coding.get("code") and key not in seen:
                    seen[key] = {"name": str(name), "group": "From the fixtures", "coding": coding}
    return list(seen.values())


def drug_choices(terminology: Any, scenarios: Iterable[Scenario]) -> list[dict[str, Any]]:
    """Sorted by group then name; the terminology when it lists drugs, else the fixtures."""
    drugs = _from_terminology(terminology) if terminology is not None else []
    if not drugs:
        drugs = _from_scenarios(scenarios)
    return sorted(drugs, key=lambda d: (d["group"], d["name"].casefold()))
