"""The data a hook call carries (spec 'HTTP Request', 'CDS Service Response'): plain types only.

It imports nothing of cds_service, so the edge, the prefetch policy and the services can all
use it without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HookRequest:
    """A validated CDS Hooks request (spec 'HTTP Request'); unknown fields tolerated."""

    hook: str
    hook_instance: str
    context: dict[str, Any]
    fhir_server: str | None = None
    fhir_authorization: dict[str, Any] | None = None
    prefetch: dict[str, Any] | None = None

    @property
    def patient_id(self) -> str | None:
        value = self.context.get("patientId")
        return value if isinstance(value, str) else None


@dataclass
class HookResult:
    """Cards plus what the service could not see (reported in the response extension)."""

    cards: list[dict[str, Any]]
    unavailable: dict[str, str] = field(default_factory=dict)
    extension: dict[str, Any] = field(default_factory=dict)  # more response extensions
    # Cards of recommendations in silent rollout (rollout mode): audited, never returned.
    silent_cards: list[dict[str, Any]] = field(default_factory=list)
    # The data the service decided on (prefetch as sent or fetched), for capture (rollout mode).
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResolvedPrefetch:
    """Prefetch data by key; keys that could not be had are in `unavailable` with a reason."""

    data: dict[str, Any] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
