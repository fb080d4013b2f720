"""CAU-2: benzodiazepines have not shown benefit for pain in inflammatory conditions [ref 6]."""

from __future__ import annotations

from cds_service.guideline.facts import (
    RuleContext,
    cond_ref,
    how_matched,
    med_ref,
    short_name,
    with_classes,
)
from cds_service.guideline.intents import ActionIntent, CardIntent, SuggestionIntent
from fhir_mappings.domain import BENZODIAZEPINE


def cau2_benzodiazepines(ctx: RuleContext) -> list[CardIntent]:
    """Spasm scope; a selected benzodiazepine draft, or an active one on patient-view."""
    if not ctx.in_scope("spasm"):
        return []
    meds = with_classes(ctx.selected() if ctx.ordering else ctx.active(), BENZODIAZEPINE)
    if not meds:
        return []
    names = ", ".join(dict.fromkeys(short_name(m) for m in meds))
    lines = [
        f"- **{m.name}** ({'draft order' if ctx.ordering else 'active'}; recognised as a "
        f"benzodiazepine by {how_matched(m)})"
        for m in meds
    ]
    detail = (
        "This patient has a muscle spasm / inflammatory myopathy diagnosis and "
        + ("is being ordered:" if ctx.ordering else "has on record:"),
        "\n".join(lines),
        "The guideline advises against benzodiazepines for pain relief here: no benefit was "
        "shown in inflammatory conditions and they carry significant risk of adverse effects "
        "(ref 6).",
    )
    suggestions = tuple(
        SuggestionIntent(
            label=f"Remove the {short_name(m)} draft order",
            actions=(
                ActionIntent("delete", f"Remove the draft order {m.name}", resource_id=m.reference),
            ),
        )
        for m in meds
        if ctx.ordering and m.reference
    )
    if ctx.ordering:
        summary = f"Remove the {names} order: benzodiazepines show no pain benefit here (ref 6)"
    else:
        summary = f"Review {names}: benzodiazepines show no pain benefit here (ref 6)"
    return [
        CardIntent(
            recommendation_id="CAU-2",
            indicator="warning",
            summary=summary,
            detail=detail,
            problem="benzodiazepine",
            suggestions=suggestions,
            selection_behavior="any",
            inputs=tuple(med_ref(m) for m in meds)
            + tuple(
                cond_ref(c)
                for c in ctx.state.conditions
                if c.categories & ctx.knowledge.scopes["spasm"]
            ),
        )
    ]
