"""The one place card intents become CDS Hooks 2.0.1 card JSON (spec: Card, Suggestion, Action)."""

from __future__ import annotations

from typing import Any

from cds_service.guideline.card_ids import new_uuid
from cds_service.guideline.intents import ActionIntent, CardIntent, SuggestionIntent
from cds_service.guideline.knowledge import Knowledge

PROVENANCE_KEY = "org.cds-myopathy.provenance"
SUMMARY_LIMIT = 139


_CONTAINERS = (dict, list, tuple)


def _prune(value: Any) -> Any:
    """Drop None, "", [] and {} recursively: the spec wants optional fields omitted."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if type(v) is str:  # most members: kept unless empty, nothing to walk
                if v:
                    out[k] = v
            elif isinstance(v, _CONTAINERS):
                v = _prune(v)
                if v:  # pruned: a dict or a list, dropped when empty
                    out[k] = v
            elif v is not None and v != "":  # 0 and False stay
                out[k] = v
        return out
    if isinstance(value, list | tuple):
        items = []
        for v in value:
            if isinstance(v, _CONTAINERS):
                v = _prune(v)
                if v:
                    items.append(v)
            elif v is not None and v != "":
                items.append(v)
        return items
    return value


def _action(action: ActionIntent) -> dict[str, Any]:
    out: dict[str, Any] = {"type": action.type, "description": action.description}
    if action.type == "delete":
        out["resourceId"] = action.resource_id
    else:
        out["resource"] = dict(action.resource or {})
    return out


def _suggestion(suggestion: SuggestionIntent) -> dict[str, Any]:
    return {
        "label": suggestion.label,
        "uuid": new_uuid(),
        "isRecommended": suggestion.is_recommended,
        "actions": [_action(a) for a in suggestion.actions],
    }


def _refs_label(refs: tuple[int, ...]) -> str:
    if not refs:
        return ""
    return (
        ", ref " + ", ".join(str(r) for r in refs)
        if len(refs) == 1
        else ", refs " + ", ".join(str(r) for r in refs)
    )


def _policy_note(intent: CardIntent, knowledge: Knowledge) -> str:
    parts = []
    for name in intent.policy_used:
        setting = knowledge.policy[name]
        unit = "" if setting.unit in ("fraction",) else f" {setting.unit}"
        parts.append(f"`{name}` = {setting.value:g}{unit}")
    if not parts:
        return ""
    return (
        "_Local policy, not from the guideline: "
        + "; ".join(parts)
        + " (site-policy settings, overridable by the site)._"
    )


def _detail(intent: CardIntent, knowledge: Knowledge) -> str:
    if intent.parts:  # a folded card: each part under its own heading, with its quote
        return "\n\n".join(
            f"**{p.recommendation_id}: {knowledge.recommendations[p.recommendation_id].title}**"
            f" ({p.summary})\n\n" + _detail(p, knowledge)
            for p in intent.parts
        )
    rec = knowledge.recommendations[intent.recommendation_id]
    blocks = [*intent.detail]
    note = _policy_note(intent, knowledge)
    if note:
        blocks.append(note)
    if intent.unavailable:
        blocks.append(
            "Could not be retrieved, so not checked: " + ", ".join(intent.unavailable) + "."
        )
    blocks.append(f"> Guideline ({rec.id}): {rec.quote}")
    return "\n\n".join(blocks)


def _override_reasons(intent: CardIntent, knowledge: Knowledge) -> list[str]:
    codes = [
        code
        for part in intent.members
        if part.with_override_reasons
        for code in knowledge.recommendations[part.recommendation_id].override_reasons
    ]
    return list(dict.fromkeys(codes))


def render(intent: CardIntent, knowledge: Knowledge) -> dict[str, Any]:
    """Card intent -> card dict, with source, override reasons and provenance."""
    rec = knowledge.recommendations[intent.recommendation_id]
    ids = [p.recommendation_id for p in intent.members]
    label = "; ".join(f"{i}{_refs_label(knowledge.recommendations[i].refs)}" for i in ids)
    summary = (
        intent.summary
        if len(intent.summary) <= SUMMARY_LIMIT
        else (intent.summary[: SUMMARY_LIMIT - 1].rstrip() + "…")
    )
    card: dict[str, Any] = {
        "uuid": new_uuid(),
        "summary": summary,
        "detail": _detail(intent, knowledge),
        "indicator": intent.indicator,
        "source": {
            "label": f"{knowledge.guideline_title} ({rec.id}{_refs_label(rec.refs)})"
            if not intent.parts
            else f"{knowledge.guideline_title} ({label})",
            "topic": {
                "system": knowledge.systems["recommendation"],
                "code": rec.id,
                "display": rec.title,
            },
        },
        "suggestions": [_suggestion(s) for s in intent.suggestions],
        "extension": {
            PROVENANCE_KEY: {
                "recommendationId": rec.id,
                "recommendationIds": ids,
                "problems": [p.problem for p in intent.members],
                "knowledgeVersion": knowledge.version,
                "inputs": list(dict.fromkeys(intent.inputs)),
                "unavailable": list(dict.fromkeys(intent.unavailable)),
                "sitePolicy": {name: knowledge.policy[name].value for name in intent.policy_used},
            }
        },
    }
    if intent.suggestions:
        card["selectionBehavior"] = intent.selection_behavior
    reasons = _override_reasons(intent, knowledge)
    if reasons:
        card["overrideReasons"] = [
            {
                "system": knowledge.systems["override_reason"],
                "code": code,
                "display": knowledge.override_reasons[code],
            }
            for code in reasons
        ]
    return _prune(card)
