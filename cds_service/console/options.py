"""The order composer's choices: FHIR-coded routes, UCUM dose units, timing repeats."""

from __future__ import annotations

from typing import Any

SNOMED = "http://snomed.info/sct"
# SNOMED CT route-of-administration concepts (FHIR R4 'SNOMED CT Route Codes' value set).
ROUTES: list[dict[str, Any]] = [
    {"label": "oral", "coding": {"system": SNOMED, "code": "26643006", "display": "Oral route"}},
    {
        "label": "subcutaneous",
        "coding": {"system": SNOMED, "code": "34206005", "display": "Subcutaneous route"},
    },
    {
        "label": "intravenous",
        "coding": {"system": SNOMED, "code": "47625008", "display": "Intravenous route"},
    },
    {
        "label": "intramuscular",
        "coding": {"system": SNOMED, "code": "78421000", "display": "Intramuscular route"},
    },
]
DOSE_UNITS = ["mg", "g", "ug", "mg/kg"]
# FHIR Timing.repeat: frequency administrations per period periodUnit.
FREQUENCIES: list[dict[str, Any]] = [
    {"label": "once daily", "frequency": 1, "period": 1, "periodUnit": "d"},
    {"label": "twice daily", "frequency": 2, "period": 1, "periodUnit": "d"},
    {"label": "three times daily", "frequency": 3, "period": 1, "periodUnit": "d"},
    {"label": "four times daily", "frequency": 4, "period": 1, "periodUnit": "d"},
    {"label": "once weekly", "frequency": 1, "period": 1, "periodUnit": "wk"},
    {"label": "every 4 weeks", "frequency": 1, "period": 4, "periodUnit": "wk"},
]
