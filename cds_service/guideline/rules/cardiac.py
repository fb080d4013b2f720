"""Cardiac involvement (CAU-4, REF-1, IS-1): a cardiac diagnosis, or a cardiac-specific
troponin above its own reference range within the look-back; troponins are separate analytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.guideline.facts import (
    RuleContext,
    cond_ref,
    is_current,
    is_high,
    ref,
    series,
    within,
)
from fhir_mappings.domain import Measurement

ANALYTE_LABELS = {
    "troponin_i": "troponin I",
    "troponin_i_hs": "high-sensitivity troponin I",
    "troponin_t": "troponin T",
    "troponin_t_hs": "high-sensitivity troponin T",
}


def troponin_label(m: Measurement) -> str:
    return ANALYTE_LABELS.get(m.analyte or "", "troponin (I or T not stated)")


@dataclass(frozen=True)
class Cardiac:
    """What the record says about cardiac involvement, troponin by troponin."""

    evidence: tuple[str, ...]  # cardiac Conditions and cardiac-specific troponins above range
    from_troponin: bool  # some evidence is a troponin (the analyte note belongs on the card)
    skeletal_only: tuple[Measurement, ...]  # raised troponins that may come from muscle
    no_range: tuple[Measurement, ...]  # troponins in the look-back with no range to judge
    cardiac_specific_seen: bool  # a cardiac-specific troponin in the look-back, any value
    troponins: tuple[Measurement, ...]  # every troponin in the look-back

    @property
    def established(self) -> bool:
        return bool(self.evidence)

    @property
    def undetermined(self) -> bool:
        """Not established, and a troponin was raised or unreadable with no troponin I to
        settle it: the record cannot rule cardiac involvement in or out."""
        if self.established:
            return False
        return bool(self.no_range) or bool(self.skeletal_only and not self.cardiac_specific_seen)


def cardiac_involvement(ctx: RuleContext) -> Cardiac:
    """Every troponin of the look-back judged against its own range, by analyte."""
    k = ctx.knowledge
    evidence = [
        cond_ref(c)
        for c in ctx.state.conditions
        if "cardiac_involvement" in c.categories and is_current(c)
    ]
    specific = set(k.kinds("cardiac_specific_troponins"))
    muscle = set(k.kinds("skeletal_muscle_troponins"))
    days = k.p("troponin_lookback_days")
    troponins = within(series(ctx.state, k.kinds("troponin_kinds")), ctx.now, days)
    skeletal, no_range, seen, from_troponin = [], [], False, False
    for m in troponins:
        if m.value is None and not m.interpretation:
            continue
        high = is_high(m)
        is_muscle = m.analyte in muscle
        if not is_muscle:
            seen = seen or m.analyte in specific
        if high is None:
            no_range.append(m)
        elif high and is_muscle:
            skeletal.append(m)
        elif high:
            evidence.append(ref(m, f"{troponin_label(m)} above its upper limit"))
            from_troponin = True
    return Cardiac(
        evidence=tuple(evidence),
        from_troponin=from_troponin,
        skeletal_only=tuple(skeletal),
        no_range=tuple(no_range),
        cardiac_specific_seen=seen,
        troponins=troponins,
    )


def troponin_note(ctx: RuleContext) -> str:
    """The site's terminology note on troponin I vs T (not from the guideline), with source."""
    note = ctx.knowledge.notes["troponin_analytes"]
    return (
        "_Terminology note (local policy, not from the guideline): "
        f"{note.text} Source: {note.source}_"
    )
