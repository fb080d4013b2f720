"""Shared test data and helpers for the FHIR gateway, fixture server and prefetch tests."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PATIENT_ID = "pt-gw-1"
TOKEN = "secret-access-token-4b1d"


def observation(oid: str, code: str, value: float, when: str, patient: str = PATIENT_ID) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "U/L", "system": "http://unitsofmeasure.org"},
    }


def patient_resources(patient: str = PATIENT_ID) -> list[dict[str, Any]]:
    """A small patient: 5 CK results, a weight, two medication orders, a condition, an allergy."""
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": patient, "gender": "female", "birthDate": "1970-03-01"},
        *(
            observation(
                f"ck-{patient}-{i}", "2157-6", 100.0 * (i + 1), f"2026-0{i + 1}-10", patient
            )
            for i in range(5)
        ),
        observation(f"wt-{patient}", "29463-7", 70.0, "2026-05-01T08:00:00Z", patient),
        {
            "resourceType": "MedicationRequest",
            "id": f"mr-{patient}-1",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient}"},
            "authoredOn": "2026-04-01",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "312617"}]},
        },
        {
            "resourceType": "MedicationRequest",
            "id": f"mr-{patient}-2",
            "status": "stopped",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient}"},
            "authoredOn": "2025-01-01",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "105586"}]},
        },
        {
            "resourceType": "Condition",
            "id": f"cond-{patient}",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "31384009"}]},
            "subject": {"reference": f"Patient/{patient}"},
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": f"alg-{patient}",
            "patient": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": RXNORM, "code": "7258"}]},
        },
    ]
    return resources


def as_bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


class OffLoopbackGuard:
    """Records (and blocks) any DNS lookup or connection that would leave this machine."""

    LOOPBACK = ("127.", "::1", "localhost")

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def allowed(self, host: object) -> bool:
        return isinstance(host, str) and host.startswith(self.LOOPBACK)

    def install(self, monkeypatch: Any) -> OffLoopbackGuard:
        import socket

        real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

        def connect(sock: socket.socket, address: Any) -> None:
            host = address[0] if isinstance(address, tuple) else address
            if not self.allowed(host):
                self.attempts.append(f"connect {host}")
                raise OSError("test guard: connection off loopback blocked")
            real_connect(sock, address)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.allowed(host):
                self.attempts.append(f"resolve {host}")
                raise OSError("test guard: name lookup off loopback blocked")
            return real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return self
