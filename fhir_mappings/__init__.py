"""FHIR R4 JSON -> the domain types the guideline rules reason on."""

from fhir_mappings.state import map_order_context, map_patient_state
from fhir_mappings.terminology import Terminology, TerminologyError, load_terminology

__all__ = [
    "Terminology",
    "TerminologyError",
    "load_terminology",
    "map_order_context",
    "map_patient_state",
]
