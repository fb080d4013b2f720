"""RELIEF-1 [refs 5, 4, 3], CAU-1 [ref 3], CAU-3 [ref 7], CAU-4: symptom-relief cautions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds_service.guideline.facts import (
    RuleContext,
    fmt_date,
    fmt_num,
    med_ref,
    ref,
    running_days,
    short_name,
    with_classes,
)
from cds_service.guideline.intents import ActionIntent, CardIntent, SuggestionIntent
from cds_service.guideline.resources import shortened
from cds_service.guideline.rules.cardiac import (
    Cardiac,
    cardiac_involvement,
    troponin_label,
    troponin_note,
)
from fhir_mappings.domain import MUSCLE_RELAXANT, NSAID, Medication
from fhir_mappings.dosage import daily_use


def _course(m: Medication) -> str:
    if m.course and m.course.days is not None:
        return f"{fmt_num(m.course.days)} days (from {m.course.source or 'the order'})"
    return "duration not stated in the order"


def relief1_combination(ctx: RuleContext) -> list[CardIntent]:
    """RELIEF-1: ordering a muscle relaxant or NSAID for spasm: the combination evidence."""
    if not ctx.ordering or not ctx.in_scope("spasm"):
        return []
    ordered = with_classes(ctx.selected(), MUSCLE_RELAXANT, NSAID)
    if not ordered:
        return []
    # Never recommend the NSAID + relaxant combination in the answer that cautions against
    # it (CAU-4), nor to a patient with cardiac involvement.
    if cardiac_involvement(ctx).established or cau4_cardiac(ctx):
        return []
    context = with_classes(
        (*ctx.orders.drafts, *ctx.active()) if ctx.orders else ctx.active(), MUSCLE_RELAXANT, NSAID
    )
    has_relaxant = bool(with_classes(context, MUSCLE_RELAXANT))
    has_nsaid = bool(with_classes(context, NSAID))
    lines = [f"- {m.name}: {_course(m)}" for m in ordered]
    combo = has_relaxant and has_nsaid
    detail = [
        "Ordered:",
        "\n".join(lines),
        (
            "An NSAID and a muscle relaxant are both ordered or active: the guideline reports "
            "the combination superior to single agents for acute muscle spasm (refs 5, 4)."
            if combo
            else "For severe pain/spasm the guideline reports an NSAID plus a muscle relaxant "
            "superior to single agents (refs 5, 4)."
        ),
        "In a randomized trial cyclobenzaprine + naproxen beat naproxen alone but caused more "
        "side effects, primarily drowsiness (ref 4).",
    ]
    if has_relaxant:
        detail.append("Muscle relaxants only for short periods, up to 2-3 weeks (ref 3).")
    summary = (
        "NSAID + muscle relaxant combination: more effective, more drowsiness; relaxant <= 2-3 "
        "weeks"
        if combo
        else "For severe spasm, NSAID + muscle relaxant beats either alone (watch drowsiness)"
    )
    return [
        CardIntent(
            "RELIEF-1",
            "info",
            summary,
            tuple(detail),
            problem="relief",
            inputs=tuple(med_ref(m) for m in context),
            with_override_reasons=False,
        )
    ]


def _per_day_units(raw: dict[str, Any], m: Medication) -> float | None:
    """Dispense units used a day (tablets through the strength when dosed in mg)."""
    dispense = raw.get("dispenseRequest")
    quantity = dispense.get("quantity") if isinstance(dispense, dict) else None
    if not isinstance(quantity, dict):
        return None
    found = daily_use(m.dose, quantity)
    if found is not None:
        return found
    try:  # the dose as written in the draft, in the dispense quantity's own unit
        dose_q = raw["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    except (KeyError, IndexError, TypeError):
        return None
    same = (dose_q.get("code") or dose_q.get("unit")) == (
        quantity.get("code") or quantity.get("unit")
    )
    per_day = m.dose.administrations_per_day if m.dose else None
    if not same or per_day is None or not isinstance(dose_q.get("value"), int | float):
        return None
    return float(dose_q["value"]) * per_day


def _intended_beyond(ctx: RuleContext, drug_class: str, limit: float) -> list[Medication]:
    """Selected draft orders of the class whose intended course exceeds `limit` days."""
    return [
        m
        for m in with_classes(ctx.selected(), drug_class)
        if m.course and m.course.days is not None and m.course.days > limit
    ]


@dataclass(frozen=True)
class _Long:
    """An active medication whose course passes a limit: run so far, or supplied for."""

    medication: Medication
    elapsed: float | None
    intended: float | None
    source: str | None

    def line(self) -> str:
        m = self.medication
        parts = []
        if self.elapsed is not None:
            parts.append(f"active since {fmt_date(m.authored_on)} ({int(self.elapsed)} days)")
        if self.intended is not None:
            parts.append(f"supplied for {fmt_num(self.intended)} days (from {self.source})")
        return f"- {m.name}: " + "; ".join(parts)


def _running_beyond(ctx: RuleContext, drug_class: str, limit: float) -> list[_Long]:
    """Active medications of the class run, or supplied, for longer than `limit` days.

    The supply comes from what was ordered (dispenseRequest, bounds: fhir_mappings.dosage),
    so a 90-day supply is 90 days from its first day.
    """
    out = []
    for m in with_classes(ctx.active(), drug_class):
        elapsed = running_days(ctx, m)
        course = m.course
        intended = (
            course.days
            if course and course.days is not None and course.source != "since authoredOn"
            else None
        )
        if (elapsed is not None and elapsed > limit) or (intended is not None and intended > limit):
            out.append(_Long(m, elapsed, intended, course.source if course else None))
    return out


def _long_summary(long: _Long, limit: float, tail: str) -> str:
    name = short_name(long.medication).capitalize()
    if long.elapsed is not None and long.elapsed > limit:
        return f"{name} running {int(long.elapsed)} days: {tail}"
    return f"{name} supplied for {fmt_num(long.intended)} days: {tail}"


def cau1_relaxant_duration(ctx: RuleContext) -> list[CardIntent]:
    """CAU-1: muscle relaxant course beyond the limit (ordered, or running on patient-view)."""
    if not ctx.in_scope("spasm"):
        return []
    limit = int(ctx.knowledge.p("muscle_relaxant_max_days"))
    policy = ("muscle_relaxant_max_days",)
    if ctx.ordering:
        long = _intended_beyond(ctx, MUSCLE_RELAXANT, limit)
        if not long:
            return []
        suggestions = []
        for m in long:
            raw = ctx.draft_resources.get(m.reference or "")
            if not raw:
                continue
            updated, changes = shortened(raw, limit, _per_day_units(raw, m))
            suggestions.append(
                SuggestionIntent(
                    f"Shorten the {short_name(m)} course to {limit} days",
                    (ActionIntent("update", f"{m.name}: " + ", ".join(changes), resource=updated),),
                )
            )
        return [
            CardIntent(
                "CAU-1",
                "warning",
                f"Limit the {short_name(long[0])} course to {limit} days: muscle relaxants only "
                "short term (ref 3)",
                (
                    "\n".join(f"- {m.name}: intended {_course(m)}" for m in long),
                    "The guideline: muscle relaxants should be used only for short periods (up "
                    f"to 2-3 weeks) (ref 3). This site's limit is {limit} days.",
                ),
                problem="relaxant-duration",
                suggestions=tuple(suggestions),
                selection_behavior="any",
                inputs=tuple(med_ref(m) for m in long),
                policy_used=policy,
            )
        ]
    long_running = _running_beyond(ctx, MUSCLE_RELAXANT, limit)
    if not long_running:
        return []
    return [
        CardIntent(
            "CAU-1",
            "warning",
            _long_summary(long_running[0], limit, "muscle relaxants only up to 2-3 weeks (ref 3)"),
            (
                "\n".join(r.line() for r in long_running),
                "The guideline: muscle relaxants should be used only for short periods (up to 2-3 "
                f"weeks) (ref 3). This site's limit is {limit} days.",
            ),
            problem="relaxant-duration",
            inputs=tuple(med_ref(r.medication) for r in long_running),
            policy_used=policy,
        )
    ]


def cau3_nsaid_duration(ctx: RuleContext) -> list[CardIntent]:
    """CAU-3: NSAID intended or running longer than the site's chronic-use threshold."""
    if not ctx.in_scope("spasm"):
        return []
    limit = ctx.knowledge.p("nsaid_chronic_days")
    policy = ("nsaid_chronic_days",)
    quote = (
        "The guideline: NSAIDs may potentially impair muscle regeneration with chronic use (ref 7)."
    )
    if ctx.ordering:
        long = _intended_beyond(ctx, NSAID, limit)
        if not long:
            return []
        return [
            CardIntent(
                "CAU-3",
                "warning",
                f"{short_name(long[0]).capitalize()} intended beyond {limit:g} days: chronic "
                "NSAIDs may impair muscle regeneration",
                (
                    "\n".join(f"- {m.name}: intended {_course(m)}" for m in long),
                    quote,
                    f"Chronic use is taken as more than {limit:g} days (local policy).",
                ),
                problem="nsaid-duration",
                inputs=tuple(med_ref(m) for m in long),
                policy_used=policy,
            )
        ]
    long_running = _running_beyond(ctx, NSAID, limit)
    if not long_running:
        return []
    return [
        CardIntent(
            "CAU-3",
            "info",
            _long_summary(
                long_running[0], limit, "chronic NSAIDs may impair muscle regeneration (ref 7)"
            ),
            (
                "\n".join(r.line() for r in long_running),
                quote,
                f"Chronic use is taken as more than {limit:g} days (local policy).",
            ),
            problem="nsaid-duration",
            inputs=tuple(med_ref(r.medication) for r in long_running),
            policy_used=policy,
        )
    ]


def _caution_list(ctx: RuleContext, meds: tuple[Medication, ...]) -> list[Medication]:
    """The medications on the documented cardiac-caution list (knowledge value set)."""
    caution = ctx.knowledge.value_sets["cardiac_caution"]
    classes, ingredients = set(caution["classes"]), set(caution["ingredients"])
    return [m for m in meds if m.classes & classes or m.ingredients & ingredients]


def cau4_cardiac(ctx: RuleContext) -> list[CardIntent]:
    """CAU-4: cardiac involvement and a drug from the documented cardiac-caution list, ordered
    (order-select/sign) or active (patient-view)."""
    if not ctx.in_scope("spasm"):
        return []
    risky = _caution_list(ctx, ctx.selected() if ctx.ordering else ctx.active())
    if not risky:
        return []
    cardiac = cardiac_involvement(ctx)
    if not cardiac.established:
        return _cau4_undetermined(ctx, risky, cardiac) if ctx.ordering else []
    how = "Ordered" if ctx.ordering else "Active"
    return [
        CardIntent(
            "CAU-4",
            "warning",
            f"Cardiac involvement: reconsider {short_name(risky[0])}, on the cardiac-caution list",
            (
                "Cardiac involvement:\n" + "\n".join(f"- {e}" for e in cardiac.evidence),
                f"{how} from the service's documented cardiac-caution list (NSAIDs, "
                "cyclobenzaprine, JAK inhibitors):\n" + "\n".join(f"- {m.name}" for m in risky),
                "The guideline: for patients with cardiac involvement, avoid medications that may "
                "exacerbate cardiac conditions. It names no specific drugs; the list is this "
                "service's (local policy, in the knowledge file).",
                *_skeletal_lines(cardiac),
                *((troponin_note(ctx),) if cardiac.troponins else ()),
            ),
            problem="cardiac",
            inputs=(*cardiac.evidence, *(med_ref(m) for m in risky)),
            policy_used=("troponin_lookback_days",) if cardiac.from_troponin else (),
        )
    ]


def _skeletal_lines(cardiac: Cardiac) -> tuple[str, ...]:
    if not cardiac.skeletal_only:
        return ()
    return (
        "Raised, not counted as cardiac-specific:\n"
        + "\n".join(f"- {ref(m, troponin_label(m))}" for m in cardiac.skeletal_only),
    )


def _cau4_undetermined(
    ctx: RuleContext, risky: list[Medication], cardiac: Cardiac
) -> list[CardIntent]:
    """A troponin that cannot be judged (no range, or troponin T alone): say what is missing."""
    if not cardiac.undetermined:
        return []
    if cardiac.no_range:
        latest = cardiac.no_range[-1]
        summary = (
            f"Check cardiac involvement before {short_name(risky[0])}: the troponin has no "
            "reference range"
        )
        finding = (
            f"{troponin_label(latest).capitalize()}: {ref(latest, 'troponin')}. It carries no "
            "reference range or interpretation, so cardiac involvement could not be judged."
        )
        shown = cardiac.no_range
    else:
        summary = (
            f"Check cardiac involvement before {short_name(risky[0])}: troponin T raised, no "
            "troponin I on record"
        )
        finding = (
            "Troponin T is above its upper limit and no cardiac-specific troponin (troponin I) "
            f"is on record within {ctx.knowledge.p('troponin_lookback_days'):g} days (local "
            "policy), so cardiac involvement is neither shown nor ruled out:\n"
            + "\n".join(f"- {ref(m, troponin_label(m))}" for m in cardiac.skeletal_only)
        )
        shown = cardiac.skeletal_only
    return [
        CardIntent(
            "CAU-4",
            "info",
            summary,
            (
                finding,
                "Ordered from the service's documented cardiac-caution list:\n"
                + "\n".join(f"- {m.name}" for m in risky),
                troponin_note(ctx),
            ),
            problem="cardiac-unknown",
            inputs=(*(ref(m, "troponin") for m in shown), *(med_ref(m) for m in risky)),
            policy_used=("troponin_lookback_days",),
        )
    ]
