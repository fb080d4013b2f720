"""The service registry: what discovery advertises and what a call dispatches to."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cds_service.errors import UnknownService
from cds_service.hooks.types import HookRequest, HookResult, ResolvedPrefetch

LOINC = "http://loinc.org"
# The labs ASSESS-1 asks for, the ECG, the myositis antibodies (RECOMMENDATIONS.md; codes
# from shared terminology CODES.md). Kept in step with fhir_mappings' value sets by a test.
LAB_CODES = [
    "2157-6",
    "1761-6",
    "1920-8",
    "1742-6",
    "14804-9",
    "2532-0",
    "4537-7",
    "30341-2",
    "1988-5",
    "30522-7",
    "10839-9",
    "89579-7",
    "6598-7",
    "67151-1",
    "11524-6",
    "17792-3",
    "33569-5",
    "8093-7",
    "17791-5",
    "45142-7",
    "8094-5",
    "11090-8",
    "43182-5",
    "31627-3",
    "29374-6",
    "51928-0",
    "8091-1",
    "105554-0",
    "11565-9",
    "33571-1",
    "8076-2",
]
VITAL_CODES = ["85354-9", "55284-4", "8480-6", "8462-4", "2345-7", "2339-0", "4548-4"]
WEIGHT_CODES = ("29463-7",)


def _codes(codes: tuple[str, ...] | list[str]) -> str:
    return ",".join(f"{LOINC}|{code}" for code in codes)


_PATIENT = "{{context.patientId}}"
# One prefetch set serves both hooks: the guideline needs the same picture of the patient.
PREFETCH: dict[str, str] = {
    "patient": f"Patient/{_PATIENT}",
    "conditions": f"Condition?patient={_PATIENT}",
    "medications": f"MedicationRequest?patient={_PATIENT}",
    "allergies": f"AllergyIntolerance?patient={_PATIENT}",
    "weight": f"Observation?patient={_PATIENT}&code={_codes(WEIGHT_CODES)}&_sort=-date",
    "labs": f"Observation?patient={_PATIENT}&code={_codes(LAB_CODES)}&_sort=-date",
    "vitals": f"Observation?patient={_PATIENT}&code={_codes(VITAL_CODES)}&_sort=-date",
    "service_requests": f"ServiceRequest?patient={_PATIENT}",
}
# Without these the service cannot tell whether the guideline applies (spec: answer 412).
REQUIRED_PREFETCH = frozenset({"patient", "conditions"})

Handler = Callable[[HookRequest, ResolvedPrefetch], HookResult]


@dataclass(frozen=True)
class ServiceDefinition:
    """One CDS Service (spec 'Discovery'): its hook, id, texts, prefetch and handler."""

    id: str
    hook: str
    title: str
    description: str
    handler: Handler
    prefetch: Mapping[str, str] = field(default_factory=dict)
    required_prefetch: frozenset[str] = frozenset()
    usage_requirements: str | None = None

    def discovery(self) -> dict[str, Any]:
        """Spec 'Discovery Response' entry for this service."""
        entry: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry


class Registry:
    """Services by id, in the order discovery lists them."""

    def __init__(self) -> None:
        self._services: dict[str, ServiceDefinition] = {}

    def add(self, service: ServiceDefinition) -> None:
        if service.id in self._services:
            raise ValueError(f"duplicate service id {service.id!r}")
        self._services[service.id] = service

    def get(self, service_id: str) -> ServiceDefinition:
        try:
            return self._services[service_id]
        except KeyError:
            raise UnknownService(f"no CDS service with id {service_id!r}") from None

    def __iter__(self) -> Iterator[ServiceDefinition]:
        return iter(self._services.values())

    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery() for s in self]}
