"""What the guideline needs from the EHR: the prefetch templates (spec 'Prefetch Template').

Derived from the knowledge (which kinds and panels each Observation key asks for) and
fhir_mappings' value sets (their codes): adding a lab to the knowledge adds it to discovery.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cds_service.errors import ConfigError
from cds_service.guideline.knowledge import Knowledge, ObservationNeed, load_knowledge
from fhir_mappings import Terminology, load_terminology

_PATIENT = "{{context.patientId}}"
# Without these the service cannot tell whether the guideline applies (spec: answer 412).
REQUIRED_PREFETCH = frozenset({"patient", "conditions"})


def observation_codes(key: str, need: ObservationNeed, term: Terminology) -> list[tuple[str, str]]:
    """(system, code) of the panels, then of the kinds, in the value sets' order."""
    codes: list[tuple[str, str]] = []
    for panel in need.panels:
        if panel not in term.panels:
            raise ConfigError(f"prefetch_observations.{key}: no panel {panel!r} in the value sets")
        codes += term.panels[panel]
    found: set[str] = set()
    for code, kind in term.observation_codes.items():
        if kind.kind in need.kinds:
            codes.append(code)
            found.add(kind.kind)
    missing = [kind for kind in need.kinds if kind not in found]
    if missing:
        raise ConfigError(f"prefetch_observations.{key}: no codes for kinds {missing}")
    return codes


def prefetch_templates(knowledge: Knowledge, term: Terminology) -> dict[str, str]:
    """One prefetch set for every hook: the guideline needs the same picture of the patient."""
    templates = {
        "patient": f"Patient/{_PATIENT}",
        "conditions": f"Condition?patient={_PATIENT}",
        "medications": f"MedicationRequest?patient={_PATIENT}",
        # Treatment history (REF-1): infusions given, home medications.
        "administrations": f"MedicationAdministration?patient={_PATIENT}",
        "statements": f"MedicationStatement?patient={_PATIENT}",
        "allergies": f"AllergyIntolerance?patient={_PATIENT}",
    }
    for key, need in knowledge.prefetch_observations.items():
        codes = ",".join(f"{system}|{code}" for system, code in observation_codes(key, need, term))
        templates[key] = f"Observation?patient={_PATIENT}&code={codes}&_sort=-date"
    templates["service_requests"] = f"ServiceRequest?patient={_PATIENT}"
    return templates


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    knowledge, term = load_knowledge(None), load_terminology()
    codes = {
        key: [code for _, code in observation_codes(key, need, term)]
        for key, need in knowledge.prefetch_observations.items()
    }
    return {
        "PREFETCH": prefetch_templates(knowledge, term),
        "LAB_CODES": codes["labs"],
        "VITAL_CODES": codes["vitals"],
        "WEIGHT_CODES": codes["weight"],
    }


def __getattr__(name: str) -> Any:
    """PREFETCH, LAB_CODES, VITAL_CODES, WEIGHT_CODES of the shipped knowledge, on first use."""
    if name in ("PREFETCH", "LAB_CODES", "VITAL_CODES", "WEIGHT_CODES"):
        return _shipped()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
