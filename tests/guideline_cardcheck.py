"""Structural checks every emitted card must pass (CDS Hooks 2.0.1 Card, our provenance)."""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

MODELS = {"MedicationRequest": MedicationRequest, "ServiceRequest": ServiceRequest}
PROVENANCE = "org.cds-myopathy.provenance"


def _no_empties(value: Any, path: str) -> None:
    assert value not in (None, "", [], {}), f"empty value at {path}"
    if isinstance(value, dict):
        for key, item in value.items():
            _no_empties(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_empties(item, f"{path}[{i}]")


def check_card(card: dict[str, Any]) -> None:
    """Assert the card is a valid CDS Hooks card with provenance; resources are valid R4."""
    _no_empties(card, "card")
    uuid.UUID(card["uuid"])
    assert 0 < len(card["summary"]) < 140, card["summary"]
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"]
    topic = card["source"]["topic"]
    assert topic["system"].startswith("https://") and topic["code"] and topic["display"]
    prov = card["extension"][PROVENANCE]
    assert prov["recommendationId"] == topic["code"]
    assert prov["knowledgeVersion"]
    assert prov["inputs"], "a card must say which data it used"
    for reason in card.get("overrideReasons", []):
        assert reason["system"] and reason["code"] and reason["display"]
    if "suggestions" in card:
        assert card["selectionBehavior"] in ("at-most-one", "any")
    for suggestion in card.get("suggestions", []):
        uuid.UUID(suggestion["uuid"])
        assert suggestion["label"] and isinstance(suggestion["isRecommended"], bool)
        for action in suggestion["actions"]:
            assert action["description"]
            if action["type"] == "delete":
                assert "resource" not in action
                kind, _, rid = action["resourceId"].partition("/")
                assert kind in MODELS and rid
            else:
                assert action["type"] in ("create", "update")
                assert "resourceId" not in action
                resource = action["resource"]
                MODELS[resource["resourceType"]].model_validate(resource)
