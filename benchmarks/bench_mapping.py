"""Mapping benchmark: map a patient with 10,000 Observations and 200 MedicationRequests.

The floor is json.loads of the same bytes; the aim is mapping <= 3x that floor. Run:
`python -m benchmarks.bench_mapping [--relevant 0.1] [--repeat 5]`.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_mappings import load_terminology, map_patient_state

LOINC = "http://loinc.org"
NOW = datetime(2026, 6, 14, tzinfo=UTC)
# Observations the rules read (a realistic myositis follow-up) ...
RELEVANT = [
    ("2157-6", "U/L", 100, 5000),
    ("1742-6", "IU/L", 10, 200),
    ("1920-8", "U/L", 10, 200),
    ("29463-7", "kg", 50, 110),
    ("2339-0", "mg/dL", 70, 250),
    ("4548-4", "%", 5, 9),
    ("1988-5", "mg/L", 1, 80),
    ("10839-9", "ng/mL", 0.001, 0.5),
]
# ... and the many others a chart holds (vitals, panels, surveys) that they ignore.
UNRELATED = [
    ("8867-4", "/min"),
    ("9279-1", "/min"),
    ("72514-3", "{score}"),
    ("39156-5", "kg/m2"),
    ("2093-3", "mg/dL"),
    ("2571-8", "mg/dL"),
    ("6690-2", "10*3/uL"),
    ("718-7", "g/dL"),
    ("789-8", "10*6/uL"),
    ("777-3", "10*3/uL"),
    ("2947-0", "mmol/L"),
    ("6298-4", "mmol/L"),
]
DRUGS = [
    ("105586", "Methotrexate 10 MG Oral Tablet"),
    ("312617", "predniSONE 5 MG Oral Tablet"),
    ("198014", "Naproxen 500 MG Oral Tablet"),
    ("197901", "LORazepam 1 MG Oral Tablet"),
    ("828299", "cyclobenzaprine 10 MG Oral Tablet"),
    ("310798", "Hydrochlorothiazide 25 MG"),
]


def _observation(i: int, rng: random.Random, relevant: bool) -> dict[str, Any]:
    when = (NOW - timedelta(hours=i * 7)).isoformat()
    if relevant:
        code, unit, low, high = rng.choice(RELEVANT)
        value = rng.uniform(low, high)
    else:
        code, unit = rng.choice(UNRELATED)
        value = rng.uniform(1, 200)
    return {
        "resourceType": "Observation",
        "id": f"obs-{i}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": code, "display": f"LOINC {code}"}],
            "text": f"LOINC {code}",
        },
        "subject": {"reference": "Patient/bench"},
        "encounter": {"reference": f"Encounter/{i}"},
        "effectiveDateTime": when,
        "issued": when,
        "valueQuantity": {
            "value": round(value, 3),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def _request(i: int, rng: random.Random) -> dict[str, Any]:
    code, name = rng.choice(DRUGS)
    return {
        "resourceType": "MedicationRequest",
        "id": f"mr-{i}",
        "status": rng.choice(["active", "stopped", "completed"]),
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": code,
                    "display": name,
                }
            ],
            "text": name,
        },
        "subject": {"reference": "Patient/bench"},
        "authoredOn": (NOW - timedelta(days=i)).isoformat(),
        "dosageInstruction": [
            {
                "timing": {
                    "repeat": {"frequency": 1, "period": 1, "periodUnit": rng.choice(["d", "wk"])}
                },
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "TAB"}}],
            }
        ],
        "dispenseRequest": {
            "quantity": {"value": 30, "unit": "TAB"},
            "expectedSupplyDuration": {"value": 30, "unit": "days", "code": "d"},
        },
    }


def patient_bytes(n_obs: int, n_meds: int, relevant: float, seed: int = 3) -> bytes:
    """One searchset Bundle with the patient's Observations and MedicationRequests."""
    rng = random.Random(seed)
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "bench", "birthDate": "1970-01-01", "gender": "female"}
    ]
    resources += [_observation(i, rng, rng.random() < relevant) for i in range(n_obs)]
    resources += [_request(i, rng) for i in range(n_meds)]
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    return json.dumps(bundle).encode()


def _best(fn: Any, repeat: int) -> float:
    """Best CPU time of `repeat` runs: process time, as the machine is shared."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _cold(parsed: Any) -> None:
    map_patient_state({"all": parsed}, now=NOW)


def run(n_obs: int, n_meds: int, relevant: float, repeat: int) -> dict[str, float]:
    data = patient_bytes(n_obs, n_meds, relevant)
    load_terminology()
    parsed = json.loads(data)
    _cold(parsed)  # warm-up (model classes, regexes)
    floor = _best(lambda: json.loads(data), repeat)
    cold = _best(lambda: _cold(parsed), repeat)
    warm = _best(lambda: map_patient_state({"all": parsed}, now=NOW), repeat)
    return {
        "bytes": len(data),
        "json_loads_s": floor,
        "mapping_s": cold,
        "ratio": cold / floor,
        "warm_s": warm,
        "warm_ratio": warm / floor,
        "relevant": relevant,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--observations", type=int, default=10_000)
    parser.add_argument("--medications", type=int, default=200)
    parser.add_argument(
        "--relevant",
        type=float,
        nargs="*",
        default=[0.1, 1.0],
        help="fractions of Observations the rules need",
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    for fraction in args.relevant:
        r = run(args.observations, args.medications, fraction, args.repeat)
        print(
            f"{args.observations} Observations ({fraction:.0%} relevant) + "
            f"{args.medications} MedicationRequests, {r['bytes'] / 1e6:.1f} MB: "
            f"json.loads {r['json_loads_s'] * 1000:.0f} ms, mapping "
            f"{r['mapping_s'] * 1000:.0f} ms = {r['ratio']:.2f}x the floor; with the "
            f"validation memo warm {r['warm_s'] * 1000:.0f} ms = {r['warm_ratio']:.2f}x"
        )


if __name__ == "__main__":
    main()
