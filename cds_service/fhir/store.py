"""In-memory resources of the fixture FHIR server, loaded from FHIR Bundles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from cds_service.fhir.search import evaluate

SEARCH_TYPES = (
    "Patient",
    "Observation",
    "MedicationRequest",
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
    """The bundle's resources with ids, references rewritten to `Type/id`."""
    entries = [e for e in bundle.get("entry") or [] if isinstance(e.get("resource"), dict)]
    aliases = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in entries
        if e.get("fullUrl") and e["resource"].get("id")
    }
    return [
        _rewrite_references(e["resource"], aliases)
        for e in entries
        if e["resource"].get("id") and e["resource"].get("resourceType")
    ]


class FixtureStore:
    """Resources by type and id; `search` evaluates the prefetch query subset."""

    def __init__(self, resources: Iterable[Mapping[str, Any]]) -> None:
        self.by_type: dict[str, dict[str, dict[str, Any]]] = {}
        for resource in resources:
            self.by_type.setdefault(resource["resourceType"], {})[resource["id"]] = dict(resource)

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> FixtureStore:
        resources: list[dict[str, Any]] = []
        for path in paths:
            resources.extend(bundle_resources(orjson.loads(Path(path).read_bytes())))
        return cls(resources)

    def read(self, rtype: str, rid: str) -> dict[str, Any] | None:
        return self.by_type.get(rtype, {}).get(rid)

    def search(self, rtype: str, params: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        """Matching resources, sorted per `_sort`; paging is the caller's business."""
        return evaluate(list(self.by_type.get(rtype, {}).values()), rtype, params)
