"""The service registry: what discovery advertises and what a call dispatches to."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cds_service.errors import UnknownService
from cds_service.model.types import HookRequest, HookResult, ResolvedPrefetch

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
    extension: Mapping[str, Any] | None = None

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
        if self.extension:
            entry["extension"] = dict(self.extension)
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
