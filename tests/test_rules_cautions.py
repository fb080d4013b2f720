"""CAU-1..CAU-4 rule tests on domain objects built directly."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.guideline import load_engine
from tests.guideline_builders import NOW, PATIENT_ID, condition, med, orders, state
from tests.guideline_cardcheck import check_card

ENGINE = load_engine("")


def run(
    hook: str,
    st: Any,
    oc: Any = None,
    drafts: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    cards = ENGINE.run(hook, st, oc, now=NOW, patient_id=PATIENT_ID, draft_resources=drafts or {})
    for card in cards:
        check_card(card)
    return cards


def ids(cards: list[dict[str, Any]]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in cards]


SPASM = (condition("spasm"),)


def test_cau2_benzodiazepine_draft_in_spasm_scope_warns_with_delete() -> None:
    diazepam = med("diazepam", "bz1", draft=True)
    cards = run("order-select", state(SPASM), orders(diazepam))
    assert ids(cards) == ["CAU-2"]
    card = cards[0]
    assert card["indicator"] == "warning"
    assert "ref 6" in card["source"]["label"]
    assert "diazepam" in card["summary"]
    [suggestion] = card["suggestions"]
    assert suggestion["actions"] == [
        {
            "type": "delete",
            "description": "Remove the draft order Diazepam product",
            "resourceId": "MedicationRequest/bz1",
        }
    ]
    prov = card["extension"]["org.cds-myopathy.provenance"]
    assert prov["recommendationId"] == "CAU-2"
    assert any("MedicationRequest/bz1" in i for i in prov["inputs"])


@pytest.mark.parametrize(
    ("conditions", "drug"),
    [
        ((), "diazepam"),  # no scope
        ((condition("spasm", status="resolved"),), "diazepam"),  # scope no longer active
        (SPASM, "acetaminophen"),  # not a benzodiazepine
    ],
)
def test_cau2_silent_out_of_scope_or_other_drug(conditions: Any, drug: str) -> None:
    assert run("order-select", state(conditions), orders(med(drug, "x1", draft=True))) == []


def test_cau2_only_selected_drafts_trigger() -> None:
    benzo = med("diazepam", "bz1", draft=True)
    other = med("acetaminophen", "a1", draft=True)
    oc = orders(benzo, other, selected=("MedicationRequest/a1",))
    assert run("order-select", state(SPASM), oc) == []


def test_cau2_two_benzodiazepine_drafts_one_card_two_deletes() -> None:
    oc = orders(med("diazepam", "bz1", draft=True), med("lorazepam", "bz2", draft=True))
    cards = run("order-sign", state((condition("dermatomyositis"),)), oc)
    assert ids(cards) == ["CAU-2"]
    assert cards[0]["selectionBehavior"] == "any"
    deleted = [a["resourceId"] for s in cards[0]["suggestions"] for a in s["actions"]]
    assert deleted == ["MedicationRequest/bz1", "MedicationRequest/bz2"]


def test_cau2_patient_view_active_benzodiazepine_warns_without_delete() -> None:
    cards = run("patient-view", state(SPASM, medications=(med("lorazepam", "l1"),)))
    assert ids(cards) == ["CAU-2"]
    assert "suggestions" not in cards[0]
    assert "lorazepam" in cards[0]["summary"]
