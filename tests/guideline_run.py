"""Shared helpers for the guideline rule tests: run the engine, check every card."""

from __future__ import annotations

from typing import Any

from cds_service.guideline import GuidelineEngine
from cds_service.guideline.knowledge import apply_site_policy, load_knowledge
from fhir_mappings.domain import OrderContext, PatientState
from tests.guideline_builders import NOW, PATIENT_ID
from tests.guideline_cardcheck import check_card

# Rule by rule: the patient-view fold is tested on its own (test_alert_fatigue).
ENGINE = GuidelineEngine(apply_site_policy(load_knowledge(), {"patient_view_fold_info": 0}))


def run(
    hook: str,
    st: PatientState,
    oc: OrderContext | None = None,
    drafts: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Cards for the hook; each one checked against the card schema first."""
    cards = ENGINE.run(hook, st, oc, now=NOW, patient_id=PATIENT_ID, draft_resources=drafts or {})
    for card in cards:
        check_card(card)
    return cards


def ids(cards: list[dict[str, Any]]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in cards]


def only(cards: list[dict[str, Any]], rec: str) -> dict[str, Any]:
    found = [c for c in cards if c["source"]["topic"]["code"] == rec]
    assert len(found) == 1, f"expected one {rec} card, got {ids(cards)}"
    return found[0]


def actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for s in card.get("suggestions", []) for a in s["actions"]]
