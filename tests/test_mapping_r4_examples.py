"""Resources shaped like the official FHIR R4 examples (observation-example*, medrx*)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import map_order_context, map_patient_state
from tests.mapping_builders import NOW

V3_INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# R4 Observation/blood-pressure: panel 85354-9, SNOMED + local codings on the components.
BLOOD_PRESSURE: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "blood-pressure",
    "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
    "identifier": [
        {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281"}
    ],
    "basedOn": [{"identifier": {"system": "https://acme.org/identifiers", "value": "1234"}}],
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {
                "system": "http://loinc.org",
                "code": "85354-9",
                "display": "Blood pressure panel with all children optional",
            }
        ],
        "text": "Blood pressure systolic & diastolic",
    },
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "2012-09-17",
    "performer": [{"reference": "Practitioner/example"}],
    "interpretation": [
        {
            "coding": [{"system": V3_INTERP, "code": "L", "display": "low"}],
            "text": "Below low normal",
        }
    ],
    "bodySite": {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}
        ]
    },
    "component": [
        {
            "code": {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "8480-6",
                        "display": "Systolic blood pressure",
                    },
                    {
                        "system": "http://snomed.info/sct",
                        "code": "271649006",
                        "display": "Systolic blood pressure",
                    },
                    {
                        "system": "http://acme.org/devices/clinical-codes",
                        "code": "bp-s",
                        "display": "Systolic Blood pressure",
                    },
                ]
            },
            "valueQuantity": {
                "value": 107,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
            "interpretation": [
                {
                    "coding": [{"system": V3_INTERP, "code": "N", "display": "normal"}],
                    "text": "Normal",
                }
            ],
        },
        {
            "code": {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "8462-4",
                        "display": "Diastolic blood pressure",
                    }
                ]
            },
            "valueQuantity": {
                "value": 60,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
            "interpretation": [
                {
                    "coding": [{"system": V3_INTERP, "code": "L", "display": "low"}],
                    "text": "Below low normal",
                }
            ],
        },
    ],
}
# R4 Observation/example: body weight 185 lbs, four codings on the code.
WEIGHT: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "example",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"},
            {"system": "http://loinc.org", "code": "3141-9", "display": "Body weight Measured"},
            {"system": "http://snomed.info/sct", "code": "27113001", "display": "Body weight"},
            {
                "system": "http://acme.org/devices/clinical-codes",
                "code": "body-weight",
                "display": "Body Weight",
            },
        ]
    },
    "subject": {"reference": "Patient/example"},
    "encounter": {"reference": "Encounter/example"},
    "effectiveDateTime": "2016-03-28",
    "valueQuantity": {
        "value": 185,
        "unit": "lbs",
        "system": "http://unitsofmeasure.org",
        "code": "[lb_av]",
    },
}
# Like R4 medrx0302-style orders: contained Medication, ordered-drug-form tablets, oral route.
MEDRX: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "id": "medrx-mtx",
    "contained": [
        {
            "resourceType": "Medication",
            "id": "med0306",
            "code": {
                "coding": [
                    {
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "105585",
                        "display": "Methotrexate 2.5 MG Oral Tablet",
                    }
                ]
            },
            "form": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "385055001",
                        "display": "Tablet dose form",
                    }
                ]
            },
            "ingredient": [
                {
                    "itemCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                "code": "6851",
                                "display": "Methotrexate",
                            }
                        ]
                    },
                    "strength": {
                        "numerator": {
                            "value": 2.5,
                            "system": "http://unitsofmeasure.org",
                            "code": "mg",
                        },
                        "denominator": {
                            "value": 1,
                            "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                            "code": "TAB",
                        },
                    },
                }
            ],
        }
    ],
    "status": "active",
    "intent": "order",
    "medicationReference": {"reference": "#med0306"},
    "subject": {"reference": "Patient/pat1", "display": "Donald Duck"},
    "authoredOn": "2026-04-14",
    "dosageInstruction": [
        {
            "sequence": 1,
            "text": "6 tablets (15 mg) once weekly on Mondays",
            "timing": {
                "repeat": {"frequency": 1, "period": 1, "periodUnit": "wk", "dayOfWeek": ["mon"]}
            },
            "route": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "26643006",
                        "display": "Oral Route",
                    }
                ]
            },
            "doseAndRate": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                                "code": "ordered",
                                "display": "Ordered",
                            }
                        ]
                    },
                    "doseQuantity": {
                        "value": 6,
                        "unit": "TAB",
                        "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                        "code": "TAB",
                    },
                }
            ],
        }
    ],
    "dispenseRequest": {
        "validityPeriod": {"start": "2026-04-14", "end": "2027-04-14"},
        "numberOfRepeatsAllowed": 3,
        "quantity": {
            "value": 24,
            "unit": "TAB",
            "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
            "code": "TAB",
        },
        "expectedSupplyDuration": {
            "value": 28,
            "unit": "days",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        },
    },
}


def test_r4_blood_pressure_example() -> None:
    state = map_patient_state({"vitals": BLOOD_PRESSURE}, now=NOW)
    assert state.issues == ()
    systolic = state.get_series("bp_systolic").latest
    diastolic = state.get_series("bp_diastolic").latest
    assert systolic is not None and systolic.value == 107 and systolic.unit == "mm[Hg]"
    assert systolic.interpretation == ("N",)
    assert diastolic is not None and diastolic.value == 60 and diastolic.interpretation == ("L",)
    assert systolic.resource_id == "blood-pressure"


def test_r4_body_weight_example_in_pounds() -> None:
    state = map_patient_state({"weight": WEIGHT}, now=NOW)
    m = state.get_series("weight").latest
    assert m is not None
    assert m.value == pytest.approx(83.91, abs=0.01) and m.unit == "kg"
    assert (m.original_value, m.original_unit) == (185, "[lb_av]")


@pytest.mark.parametrize("as_draft", [False, True])
def test_r4_like_methotrexate_order(as_draft: bool) -> None:
    if as_draft:
        ctx = map_order_context(
            {"resourceType": "Bundle", "entry": [{"resource": {**MEDRX, "status": "draft"}}]},
            ["MedicationRequest/medrx-mtx"],
            now=NOW,
        )
        (med,) = ctx.selected()
    else:
        (med,) = map_patient_state({"medications": MEDRX}, now=NOW).medications
    assert med.classes == {"methotrexate"}
    assert med.matched_by == ("rxnorm-ingredient:6851",)
    assert med.dose is not None
    assert med.dose.mg_per_week == pytest.approx(15)
    assert med.dose.interval_days == pytest.approx(7)
    assert med.dose.route == "oral"
    assert med.course is not None
    assert med.course.days == pytest.approx(28 * 4)
    assert med.course.source == "expectedSupplyDuration x (1 + numberOfRepeatsAllowed)"
    assert (med.course.elapsed_days is None) is as_draft
