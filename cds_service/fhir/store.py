"""Resources of the fixture FHIR server, loaded from FHIR Bundles (fixtures and Synthea)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cds_service.fhir.scenarios import roll
from cds_service.fhir.search import InMemoryFhir

SEARCH_TYPES = (
    "Patient",
    "Observation",
    "MedicationRequest",
    "MedicationAdministration",
    "MedicationStatement",
    "Condition",
    "AllergyIntolerance",
    "ServiceRequest",
)


def _rewrite_references(node: Any, aliases: Mapping[str, str]) -> Any:
    """Turn `urn:uuid:` references (Synthea transaction bundles) into `Type/id`."""
    if isinstance(node, dict):
        out = {k: _rewrite_references(v, aliases) for k, v in node.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in aliases:
            out["reference"] = aliases[ref]
        return out
    if isinstance(node, list):
        return [_rewrite_references(v, aliases) for v in node]
    return node


def bundle_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The bundle's resources that have an id, references rewritten to `Type/id`."""
    entries = [
        e
        for e in bundle.get("entry") or []
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    aliases = {
        e["fullUrl"]: f"{e['resource'].get('resourceType')}/{e['resource']['id']}"
        for e in entries
        if e.get("fullUrl") and e["resource"].get("id")
    }
    return [
        _rewrite_references(e["resource"], aliases)
        for e in entries
        if e["resource"].get("id") and e["resource"].get("resourceType")
    ]


class FixtureStore(InMemoryFhir):
    """The foundation's in-memory search, fed from bundle files with relative dates rolled."""

    @classmethod
    def from_files(cls, paths: Iterable[Path], now: datetime | None = None) -> FixtureStore:
        now = now or datetime.now(UTC)
        resources: list[dict[str, Any]] = []
        for path in paths:
            resources.extend(bundle_resources(roll(orjson.loads(Path(path).read_bytes()), now)))
        return cls(resources)

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any]) -> FixtureStore:
        """One already-rolled bundle (a loaded fixtures.Scenario's patient_bundle)."""
        return cls(bundle_resources(bundle))

    @classmethod
    def merged(cls, stores: Iterable[InMemoryFhir]) -> FixtureStore:
        """One store holding every resource once: the first of a duplicate type/id wins."""
        seen: set[tuple[str, str]] = set()
        resources: list[dict[str, Any]] = []
        for store in stores:
            for rtype, items in store.by_type.items():
                for resource in items:
                    if (rtype, resource["id"]) not in seen:
                        seen.add((rtype, resource["id"]))
                        resources.append(resource)
        return cls(resources)
