"""CAU-2: benzodiazepines have not shown benefit for pain in inflammatory conditions [ref 6]."""

from __future__ import annotations

import re

from cds_service.guideline.facts import (
    RuleContext,
    cond_ref,
    how_matched,
    med_ref,
    short_name,
    with_classes,
)
from cds_service.guideline.intents import ActionIntent, CardIntent, SuggestionIntent
from fhir_mappings.domain import BENZODIAZEPINE, Medication

_INJECTABLE = re.compile(r"\b(inject\w*|prefilled syringe|auto-?injector|cartridge)\b", re.I)
_PARENTERAL = frozenset({"intravenous", "intramuscular", "subcutaneous"})


def one_off_injectable(m: Medication) -> bool:
    """A single dose given by injection: procedural use (e.g. sedation), not pain relief."""
    injectable = (m.dose is not None and m.dose.route in _PARENTERAL) or bool(
        _INJECTABLE.search(m.name)
    )
    return m.single_dose and injectable


def cau2_benzodiazepines(ctx: RuleContext) -> list[CardIntent]:
    """Spasm scope; a selected benzodiazepine draft, or an active one on patient-view."""
    if not ctx.in_scope("spasm"):
        return []
    meds = with_classes(ctx.selected() if ctx.ordering else ctx.active(), BENZODIAZEPINE)
    if not meds:
        return []
    one_off = tuple(m for m in meds if one_off_injectable(m))
    meds = tuple(m for m in meds if not one_off_injectable(m))
    if not meds:
        return _if_for_pain(ctx, one_off)
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
        *(
            (
                "Also ordered, as a single injectable dose (not treated as pain relief, no "
                "removal suggested): " + ", ".join(m.name for m in one_off) + ".",
            )
            if one_off
            else ()
        ),
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


def _if_for_pain(ctx: RuleContext, one_off: tuple[Medication, ...]) -> list[CardIntent]:
    """A one-off injectable benzodiazepine (procedural): the caution only if used for pain."""
    names = ", ".join(dict.fromkeys(short_name(m) for m in one_off))
    return [
        CardIntent(
            recommendation_id="CAU-2",
            indicator="info",
            summary=f"If {names} is used for pain: benzodiazepines show no pain benefit here "
            "(ref 6)",
            detail=(
                "\n".join(
                    f"- **{m.name}**: a single dose by injection "
                    f"({'draft order' if ctx.ordering else 'active'}; recognised as a "
                    f"benzodiazepine by {how_matched(m)})"
                    for m in one_off
                ),
                "A one-off injectable dose is usually procedural (for example sedation), which "
                "the guideline does not address; it is not treated as pain relief and no "
                "removal is suggested.",
                "If it is meant for pain: benzodiazepines have not shown benefit for pain relief "
                "in inflammatory conditions and carry significant risk of adverse effects (ref 6).",
            ),
            problem="benzodiazepine",
            inputs=tuple(med_ref(m) for m in one_off),
        )
    ]
