"""REF-1 [ref 1]: inadequate CK response after 4-6 weeks: refractory options, and those tried."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cds_service.guideline.facts import (
    RuleContext,
    aware,
    fmt_date,
    med_ref,
    running_days,
    short_name,
    therapy_glucocorticoids,
)
from cds_service.guideline.intents import CardIntent
from cds_service.guideline.rules.cautions import cardiac_involvement
from cds_service.guideline.rules.response import CkTrend, ck_policy, ck_trend
from fhir_mappings.domain import Medication

# In the guideline's own order; features of the patient move an option to the front.
REFRACTORY_OPTIONS = {
    "ivig": "Consider IVIG, especially helpful when skin features are prominent",
    "rituximab": "Consider rituximab (may take up to 26 weeks to show effect)",
    "cyclophosphamide": "For severe disease with major organ involvement, consider "
    "cyclophosphamide",
    "jak": "JAK inhibitors can be considered for progressive disease",
}
# Option key -> drug class of fhir_mappings (value-set keys).
OPTION_CLASSES = {
    "ivig": "ivig",
    "rituximab": "rituximab",
    "cyclophosphamide": "cyclophosphamide",
    "jak": "jak_inhibitor",
}
OPTION_NAMES = {
    "ivig": "IVIG",
    "rituximab": "rituximab",
    "cyclophosphamide": "cyclophosphamide",
    "jak": "JAK inhibitor",
}


@dataclass(frozen=True)
class Given:
    """One refractory option on record: every order, administration or statement of it."""

    key: str
    records: tuple[Medication, ...]

    @property
    def active(self) -> bool:
        return any(m.status in ("active", "on-hold") for m in self.records)

    @property
    def last(self) -> Medication:
        dated = [m for m in self.records if m.last_date is not None]
        if not dated:
            return self.records[-1]
        return max(dated, key=lambda m: aware(m.last_date))  # type: ignore[arg-type]

    def describe(self) -> str:
        m = self.last
        verb = _WHEN.get(m.source, "recorded")
        when = f"{verb} {fmt_date(m.last_date)}" if m.last_date is not None else "undated"
        state = "active" if self.active else (m.status or "status not recorded")
        return (
            f"{OPTION_NAMES[self.key]}: {m.name} ({state}, {when}; "
            f"{m.reference or m.source}, {len(self.records)} record(s))"
        )


# How the date of each kind of record reads on the card.
_WHEN = {
    "MedicationAdministration": "given",
    "MedicationStatement": "taken until",
    "MedicationRequest": "ordered",
}


# Records that say the drug was not (yet) given: a draft or cancelled order, an intended
# statement. (entered-in-error, not-done and not-taken never reach the rules.)
_NOT_GIVEN = frozenset({"draft", "cancelled", "intended"})


def treatment_history(ctx: RuleContext) -> dict[str, Given]:
    """Refractory options given, in any status and from any resource (drafts aside)."""
    drafts = ctx.draft_refs()
    out: dict[str, Given] = {}
    for key, drug_class in OPTION_CLASSES.items():
        records = tuple(
            m
            for m in ctx.state.medications_in_class(drug_class)
            if not m.is_draft
            and m.status not in _NOT_GIVEN
            and (m.reference is None or m.reference not in drafts)
        )
        if records:
            out[key] = Given(key, records)
    return out


def _days_on(ctx: RuleContext, meds: tuple[Medication, ...]) -> float | None:
    """Longest time any of these medications has been running, if known."""
    days = [d for d in (running_days(ctx, m) for m in meds) if d is not None]
    return max(days) if days else None


def _rituximab_window(ctx: RuleContext, given: Given | None) -> tuple[str, ...]:
    """Rituximab active, undated, or last given within the guideline's 26 weeks: say so."""
    if given is None:
        return ()
    weeks = ctx.knowledge.number("rituximab_effect_weeks")
    last = given.last
    if given.active:
        return (
            f"Rituximab is active ({med_ref(last)}): it may take up to {weeks:g} weeks to "
            "show effect (ref 1); not proposed again.",
        )
    if last.last_date is None:
        return (
            f"Rituximab is on record without a date ({med_ref(last)}): whether its "
            f"up-to-{weeks:g}-week window has passed cannot be told; not proposed again.",
        )
    since = aware(ctx.now) - aware(last.last_date)
    if since <= timedelta(weeks=weeks):
        return (
            f"Rituximab last given {fmt_date(last.last_date)}, {since.days // 7} weeks ago "
            f"({last.reference or last.source}): still inside the up to {weeks:g} weeks it "
            "may take to show effect (ref 1); not proposed again.",
        )
    return ()


def _order(
    ctx: RuleContext, trend: CkTrend, cardiac: tuple[str, ...]
) -> tuple[list[tuple[str, str]], list[str]]:
    """(why, option) pairs moved to the front, then every option in the guideline's order."""
    features: list[tuple[str, str]] = []
    if ctx.state.has_category("dermatomyositis"):
        features.append(("dermatomyositis (skin features): IVIG listed first", "ivig"))
    if cardiac or any(c.severity == "severe" for c in ctx.state.conditions):
        features.append(
            (
                "cardiac/major organ involvement or severe disease: cyclophosphamide",
                "cyclophosphamide",
            )
        )
    if trend.rising:
        features.append(("rising CK (progressive disease): JAK inhibitor", "jak"))
    order = [k for _, k in features]
    return features, order + [k for k in REFRACTORY_OPTIONS if k not in order]


def ref1_refractory(ctx: RuleContext) -> list[CardIntent]:
    """REF-1: >= site weeks of glucocorticoid + MTX/MMF and an inadequate CK response."""
    if ctx.ordering or not ctx.in_scope("myopathy"):
        return []
    history = treatment_history(ctx)
    # On a refractory option other than rituximab now: its own response is not judged here.
    if any(g.active for k, g in history.items() if k != "rituximab"):
        return []
    steroids = therapy_glucocorticoids(ctx)  # above the prednisone-equivalent threshold
    sparing = ctx.active_of(*ctx.knowledge.kinds("steroid_sparing"))
    if not steroids or not sparing:
        return []
    on_steroid, on_sparing = _days_on(ctx, steroids), _days_on(ctx, sparing)
    if on_steroid is None or on_sparing is None:
        return []
    together = min(on_steroid, on_sparing)
    weeks = ctx.knowledge.p("refractory_weeks")
    trend = ck_trend(ctx)
    if together < weeks * 7 or trend is None or not trend.inadequate:
        return []
    cardiac = cardiac_involvement(ctx).evidence
    features, order = _order(ctx, trend, cardiac)
    window = _rituximab_window(ctx, history.get("rituximab"))
    tried = {k: g for k, g in history.items() if k != "rituximab" or not window}
    options = [k for k in order if k not in tried and not (k == "rituximab" and window)]
    shown = [why for why, key in features if key in options]
    why = "rising" if trend.rising else "inadequate response"
    weeks_on = int(together) // 7
    summary = (
        f"CK {why} after {weeks_on} weeks of combined therapy (CK {trend.value:.0f} U/L, "
        f"{trend.value / (trend.uln or 1):.1f}x ULN): "
        + ("rituximab still inside its 26-week window" if window else "consider refractory options")
    )
    listing = (
        "Options the guideline lists for inadequate response (ref 1), ordered for this patient:\n"
        + "\n".join(f"{i}. {REFRACTORY_OPTIONS[k]}" for i, k in enumerate(options, 1))
        if options
        else "Every option the guideline lists for inadequate response is on record."
    )
    detail = (
        f"On {', '.join(short_name(m) for m in steroids)} and "
        f"{', '.join(short_name(m) for m in sparing)} together for {int(together)} days "
        f"(threshold {weeks:g} weeks, local policy within the guideline's 4-6 weeks).",
        trend.measured(),
        trend.definitions(),
        trend.block(),
        *window,
        *(
            (
                "Already tried (not listed again):\n"
                + "\n".join(f"- {g.describe()}" for g in tried.values()),
            )
            if tried
            else ()
        ),
        listing,
        *(("Ordering reflects: " + "; ".join(shown) + ".",) if shown else ()),
        "The guideline gives no doses for these options; none are suggested.",
    )
    return [
        CardIntent(
            "REF-1",
            "info" if window else "warning",
            summary,
            detail,
            problem="refractory",
            inputs=(
                *(med_ref(m) for m in (*steroids, *sparing)),
                *trend.inputs,
                *cardiac,
                *(med_ref(g.last) for g in history.values()),
            ),
            policy_used=("refractory_weeks", *ck_policy(trend)),
        )
    ]
