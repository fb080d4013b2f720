"""What happened in one hook call, handed to listeners (the audit trail) after the answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class HookRecord:
    """One hook call: enough for the audit trail, and no raw prefetch."""

    service_id: str
    hook: str
    hook_instance: str
    patient_id: str | None  # listeners must hash it before storing; never log it
    started_at: datetime
    duration_ms: float
    cards: list[dict[str, Any]]
    knowledge_version: str
    unavailable: dict[str, str] = field(default_factory=dict)
    status: int = 200
    # Cards of silent recommendations: would have fired, were not returned.
    silent_cards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def recommendation_ids(self) -> list[str]:
        return [card_recommendation_id(card) or "" for card in self.cards]


PROVENANCE_KEY = "org.cds-myopathy.provenance"


def card_recommendation_id(card: Mapping[str, Any]) -> str | None:
    """The recommendation id a card carries in its provenance extension."""
    provenance = (card.get("extension") or {}).get(PROVENANCE_KEY) or {}
    value = provenance.get("recommendationId")
    return value if isinstance(value, str) else None


def card_recommendations(card: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """(recommendation id, problem) for each recommendation a card stands for (a folded card
    stands for several); from its provenance extension, empty when it has none."""
    provenance = (card.get("extension") or {}).get(PROVENANCE_KEY) or {}
    ids = provenance.get("recommendationIds")
    problems = provenance.get("problems")
    if isinstance(ids, list) and all(isinstance(i, str) for i in ids) and ids:
        if not isinstance(problems, list) or len(problems) != len(ids):
            problems = [None] * len(ids)
        return [(i, p if isinstance(p, str) else None) for i, p in zip(ids, problems, strict=True)]
    single = card_recommendation_id(card)
    return [(single, None)] if single else []
