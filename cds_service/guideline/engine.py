"""GuidelineEngine: run every recommendation's rule for a hook, dedupe, render cards."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cds_service.guideline.cards import render
from cds_service.guideline.facts import RuleContext
from cds_service.guideline.intents import INDICATOR_RANK, CardIntent
from cds_service.guideline.knowledge import RULE_IDS, Knowledge
from cds_service.guideline.rules import RULES
from fhir_mappings.domain import OrderContext, PatientState

LOG = logging.getLogger(__name__)
Rule = Callable[[RuleContext], list[CardIntent]]


@dataclass
class Evaluation:
    """Cards to return, and cards of silent recommendations (audited, never returned)."""

    cards: list[dict[str, Any]] = field(default_factory=list)
    silent: list[dict[str, Any]] = field(default_factory=list)


class GuidelineEngine:
    """Knowledge + rules; `run` is the contract the protocol layer calls."""

    def __init__(self, knowledge: Knowledge, rules: Mapping[str, Rule] | None = None) -> None:
        self.knowledge = knowledge
        self.rules = dict(rules if rules is not None else RULES)

    @property
    def version(self) -> str:
        return self.knowledge.version

    def intents(
        self,
        hook: str,
        state: PatientState,
        orders: OrderContext | None,
        *,
        now: datetime,
        patient_id: str | None,
        draft_resources: Mapping[str, dict[str, Any]],
    ) -> list[CardIntent]:
        """Card intents for the hook, one per problem, most severe first."""
        ctx = RuleContext(hook, state, orders, now, patient_id, self.knowledge, draft_resources)
        seen: set[tuple[str, str]] = set()
        out: list[CardIntent] = []
        for rec_id in RULE_IDS:
            rec = self.knowledge.recommendations[rec_id]
            if hook not in rec.hooks or rec_id not in self.rules:
                continue
            if self.knowledge.mode(rec_id) == "off":  # issue 16: not evaluated at all
                continue
            for intent in self._safe(rec_id, ctx):
                key = (intent.recommendation_id, intent.problem)
                if key in seen:
                    continue
                seen.add(key)
                out.append(intent)
        order = {rec_id: i for i, rec_id in enumerate(RULE_IDS)}
        out.sort(key=lambda i: (INDICATOR_RANK[i.indicator], order[i.recommendation_id]))
        return out

    def _safe(self, rec_id: str, ctx: RuleContext) -> list[CardIntent]:
        """One rule's intents; a rule that fails is logged and skipped, never a 500."""
        try:
            return self.rules[rec_id](ctx)
        except Exception:  # a defect in one rule must not silence the others
            LOG.exception("guideline rule %s failed; its card is omitted", rec_id)
            return []

    def evaluate(
        self,
        hook: str,
        state: PatientState,
        orders: OrderContext | None,
        *,
        now: datetime,
        patient_id: str | None,
        draft_resources: Mapping[str, dict[str, Any]],
    ) -> Evaluation:
        """Cards for one hook call, split by the recommendation's rollout mode (issue 16)."""
        intents = self.intents(
            hook, state, orders, now=now, patient_id=patient_id, draft_resources=draft_resources
        )
        result = Evaluation()
        for intent in intents:
            silent = self.knowledge.mode(intent.recommendation_id) == "silent"
            (result.silent if silent else result.cards).append(render(intent, self.knowledge))
        return result

    def run(
        self,
        hook: str,
        state: PatientState,
        orders: OrderContext | None,
        *,
        now: datetime,
        patient_id: str | None,
        draft_resources: Mapping[str, dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """CDS Hooks cards returned for one hook call (patient-view, order-select, order-sign)."""
        return self.evaluate(
            hook, state, orders, now=now, patient_id=patient_id, draft_resources=draft_resources
        ).cards
