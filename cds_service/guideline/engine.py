"""GuidelineEngine: run every recommendation's rule for a hook, dedupe, render cards."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cds_service.guideline.cards import render
from cds_service.guideline.facts import RuleContext
from cds_service.guideline.fold import fold_info, snooze
from cds_service.guideline.intents import INDICATOR_RANK, CardIntent
from cds_service.guideline.knowledge import RULE_IDS, Knowledge
from cds_service.guideline.rules import RULES
from fhir_mappings.domain import OrderContext, PatientState

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """The cards of one hook call, and the (recommendation id, problem) pairs held back."""

    cards: list[dict[str, Any]]
    snoozed: list[tuple[str, str]] = field(default_factory=list)


Rule = Callable[[RuleContext], list[CardIntent]]


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
            for intent in self._safe(rec_id, ctx):
                key = (intent.recommendation_id, intent.problem)
                if key in seen:
                    continue
                seen.add(key)
                out.append(intent)
        order = {rec_id: i for i, rec_id in enumerate(RULE_IDS)}
        out.sort(key=lambda i: (INDICATOR_RANK[i.indicator], order[i.recommendation_id]))
        return out

    def answer(
        self,
        hook: str,
        state: PatientState,
        orders: OrderContext | None,
        *,
        now: datetime,
        patient_id: str | None,
        draft_resources: Mapping[str, dict[str, Any]],
        snoozed: Callable[[], frozenset[tuple[str, str]]] | None = None,
    ) -> Answer:
        """Cards for the hook; on patient-view problems `snoozed()` names are held back and the
        informational follow-up cards folded into one (issue 14, alert fatigue)."""
        intents = self.intents(
            hook, state, orders, now=now, patient_id=patient_id, draft_resources=draft_resources
        )
        held: list[CardIntent] = []
        if hook == "patient-view":
            # Asked only when there is something to hold back (it may read the database).
            if snoozed is not None and any(i.indicator != "critical" for i in intents):
                intents, held = snooze(intents, snoozed())
            intents = fold_info(intents, self.knowledge)
        return Answer(
            cards=[render(intent, self.knowledge) for intent in intents],
            snoozed=[(i.recommendation_id, i.problem) for i in held],
        )

    def _safe(self, rec_id: str, ctx: RuleContext) -> list[CardIntent]:
        """One rule's intents; a rule that fails is logged and skipped, never a 500."""
        try:
            return self.rules[rec_id](ctx)
        except Exception:  # a defect in one rule must not silence the others
            LOG.exception("guideline rule %s failed; its card is omitted", rec_id)
            return []

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
        """CDS Hooks cards for one hook call (patient-view, order-select, order-sign)."""
        return self.answer(
            hook, state, orders, now=now, patient_id=patient_id, draft_resources=draft_resources
        ).cards
