"""Alert fatigue: patient-view follow-up cards folded into one; snoozed problems."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cds_service.guideline.intents import CardIntent
from cds_service.guideline.knowledge import Knowledge

FOLD_PREFIX = "Follow-up on therapy: "


def fold_info(intents: Sequence[CardIntent], knowledge: Knowledge) -> list[CardIntent]:
    """The informational cards of `value_sets.fold_info` as one card (`patient_view_fold_info`).

    Warnings and critical cards are never folded; the folded card keeps every part's text,
    guideline quote, suggestions and inputs, and names every recommendation id it stands for.
    """
    order = list(knowledge.value_sets.get("fold_info", ()))
    parts = [i for i in intents if i.indicator == "info" and i.recommendation_id in order]
    if knowledge.p("patient_view_fold_info") < 1 or len(parts) < 2:
        return list(intents)
    parts.sort(key=lambda i: order.index(i.recommendation_id))
    primary = parts[0]
    labels = [i.fold_label or knowledge.recommendations[i.recommendation_id].title for i in parts]
    folded = CardIntent(
        recommendation_id=primary.recommendation_id,
        indicator="info",
        summary=FOLD_PREFIX + "; ".join(labels),
        detail=(),
        problem=primary.problem,
        suggestions=tuple(s for i in parts for s in i.suggestions),
        selection_behavior="any",
        inputs=_union(i.inputs for i in parts),
        unavailable=_union(i.unavailable for i in parts),
        policy_used=_union(i.policy_used for i in parts),
        with_override_reasons=any(i.with_override_reasons for i in parts),
        parts=tuple(parts),
    )
    folded_ids = {id(p) for p in parts}
    first = next(n for n, i in enumerate(intents) if id(i) in folded_ids)
    rest = [i for i in intents if id(i) not in folded_ids]
    return [*rest[:first], folded, *rest[first:]]


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(x for g in groups for x in g))


def snooze(
    intents: Sequence[CardIntent], snoozed: frozenset[tuple[str, str]]
) -> tuple[list[CardIntent], list[CardIntent]]:
    """(shown, held back): a non-critical card whose problem was overridden recently is held."""
    if not snoozed:
        return list(intents), []
    shown: list[CardIntent] = []
    held: list[CardIntent] = []
    for intent in intents:
        key = (intent.recommendation_id, intent.problem)
        (held if intent.indicator != "critical" and key in snoozed else shown).append(intent)
    return shown, held
