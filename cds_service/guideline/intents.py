"""Card intents: what a rule wants to say, before cards.py renders it as CDS Hooks JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

INDICATOR_RANK = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class ActionIntent:
    """CDS Hooks action: create/update carry a whole resource, delete a resourceId."""

    type: str
    description: str
    resource: Mapping[str, Any] | None = field(default=None, compare=False)
    resource_id: str | None = None


@dataclass(frozen=True)
class SuggestionIntent:
    label: str
    actions: tuple[ActionIntent, ...]
    is_recommended: bool = True


@dataclass(frozen=True)
class CardIntent:
    """One problem for one patient, as one card."""

    recommendation_id: str
    indicator: str
    summary: str
    detail: tuple[str, ...]  # markdown paragraphs / bullet blocks, joined by cards.py
    problem: str  # dedupe key within a recommendation: one card per problem
    suggestions: tuple[SuggestionIntent, ...] = ()
    selection_behavior: str = "at-most-one"
    inputs: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()
    policy_used: tuple[str, ...] = ()  # site-policy setting names the card relies on
    with_override_reasons: bool = True
    fold_label: str = ""  # a few words naming it inside a folded card (engine.fold)
    parts: tuple[CardIntent, ...] = ()  # a folded card: the intents it stands for

    @property
    def members(self) -> tuple[CardIntent, ...]:
        """The intents this card stands for: its parts when folded, else itself."""
        return self.parts or (self,)
