"""IS-1 prednisone 1 mg/kg/day [refs 2, 1]; IS-2 methotrexate [ref 1]; IS-3 MMF [ref 1]."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cds_service.guideline.facts import (
    RuleContext,
    SteroidUse,
    below_therapy,
    cond_ref,
    fmt_date,
    fmt_num,
    glucocorticoid_therapy,
    is_child,
    med_ref,
    paediatric_note,
    qualified,
    ref,
    series,
    valued,
    with_ingredient,
)
from cds_service.guideline.intents import ActionIntent, CardIntent, SuggestionIntent
from cds_service.guideline.resources import medication_request, week_based, weekly
from cds_service.guideline.rules.assess import workup_first
from cds_service.guideline.rules.cardiac import cardiac_involvement
from fhir_mappings.domain import METHOTREXATE, Measurement, Medication

WEIGHT_RANGE_KG = (2.0, 400.0)  # outside this a weight is taken as a data error


@dataclass(frozen=True)
class WeightFinding:
    """The weight usable for dosing, or why there is none."""

    weight: Measurement | None
    problem: str | None
    unavailable: tuple[str, ...] = ()


def usable_weight(ctx: RuleContext) -> WeightFinding:
    """Latest body weight within the site-policy age; missing data is named, not guessed."""
    if ctx.unavailable("weight"):
        return WeightFinding(None, "body weight could not be retrieved", ("weight",))
    every = series(ctx.state, ctx.knowledge.kinds("weight_kinds"))
    weights = valued(every)
    newest = every[-1] if every else None
    if newest is not None and newest.value is None:
        why = newest.unusable_reason or "it has no usable value"
        return WeightFinding(
            None,
            f"the latest body weight ({qualified('Observation', newest.resource_id)}) "
            f"is unusable: {why}",
        )
    if not weights:
        return WeightFinding(None, "no body weight is on record")
    latest = weights[-1]
    max_age = ctx.knowledge.p("weight_max_age_days")
    age = ctx.days_since(latest.effective) or 0.0
    if latest.unit != "kg" or not WEIGHT_RANGE_KG[0] <= (latest.value or 0) <= WEIGHT_RANGE_KG[1]:
        return WeightFinding(None, f"the latest body weight ({ref(latest, 'weight')}) is unusable")
    if age > max_age:
        return WeightFinding(
            None,
            f"the latest body weight ({fmt_num(latest.value)} kg on "
            f"{fmt_date(latest.effective)}) is older than {max_age:g} days (local policy)",
        )
    return WeightFinding(latest, None)


@dataclass(frozen=True)
class PrednisoneDose:
    weight_kg: float
    raw_mg: float
    rounded_mg: float
    final_mg: float
    capped: bool
    maths: str

    @property
    def mg_per_kg(self) -> float:
        return self.final_mg / self.weight_kg


def prednisone_dose(
    weight_kg: float, step: float, cap: float, ceiling_mg: float | None = None
) -> PrednisoneDose:
    """1 mg/kg/day rounded half-up to the site step (down when that would pass the order
    check's ceiling), capped at the site maximum; 0 mg when no step fits (no suggestion)."""
    raw = weight_kg * 1.0
    rounded = math.floor(raw / step + 0.5) * step
    how = "nearest"
    if ceiling_mg is not None and rounded > ceiling_mg + 1e-9:
        rounded, how = math.floor(ceiling_mg / step) * step, "step below, within the order check's"
    final = min(rounded, cap)
    maths = f"1 mg/kg/day x {fmt_num(weight_kg)} kg = {fmt_num(raw)} mg/day; rounded to the "
    maths += (
        f"nearest {step:g} mg = {fmt_num(rounded)} mg/day"
        if how == "nearest"
        else f"{step:g} mg step below, within the local dose tolerance = {fmt_num(rounded)} mg/day"
    )
    maths += (
        f"; capped at the local maximum of {cap:g} mg/day = **{fmt_num(final)} mg/day**"
        if rounded > cap
        else f" (local maximum {cap:g} mg/day not reached) = **{fmt_num(final)} mg/day**"
    )
    return PrednisoneDose(weight_kg, raw, rounded, final, rounded > cap, maths)


def severe_disease(ctx: RuleContext) -> str | None:
    """Why the disease counts as severe (cardiac involvement or severity), or None."""
    for c in ctx.state.conditions:
        if "cardiac_involvement" in c.categories:
            return f"cardiac involvement is recorded ({cond_ref(c)})"
        if "myopathy" in c.categories and c.severity == "severe":
            return f"the myopathy is recorded as severe ({cond_ref(c)})"
    cardiac = cardiac_involvement(ctx)
    if cardiac.established:
        return f"cardiac involvement ({cardiac.evidence[0]})"
    return None


def _methylpred_note(ctx: RuleContext) -> tuple[str, ...]:
    why = severe_disease(ctx)
    if not why:
        return ()
    return (
        f"Severe disease: {why}. The guideline names IV methylprednisolone for severe cases; "
        "it gives no dose, so none is suggested.",
    )


def _conditions_used(ctx: RuleContext) -> tuple[str, ...]:
    return tuple(
        cond_ref(c) for c in ctx.state.conditions if c.categories & ctx.knowledge.scopes["spasm"]
    )


def _below_therapy_note(ctx: RuleContext) -> tuple[str, ...]:
    low = below_therapy(ctx)
    if not low:
        return ()
    threshold = ctx.knowledge.p("glucocorticoid_therapy_mg_per_day")
    return (
        "Not counted as first-line glucocorticoid therapy (at or below "
        f"{threshold:g} mg/day prednisone-equivalent, local policy; topical and inhaled use "
        "never count): " + "; ".join(u.describe() for u in low) + ".",
    )


def _start_problems(ctx: RuleContext) -> tuple[str, ...]:
    """The detail lines common to every IS-1 start card."""
    return (
        "Inflammatory myopathy without first-line glucocorticoid therapy on record. The "
        "guideline's first line is prednisone 1 mg/kg/day orally (refs 2, 1).",
        *_below_therapy_note(ctx),
    )


def is1_prednisone(ctx: RuleContext) -> list[CardIntent]:
    """IS-1: suggest 1 mg/kg/day (patient-view) or check an ordered dose (order hooks)."""
    if not ctx.in_scope("myopathy"):
        return []
    if ctx.ordering:
        return _is1_check_orders(ctx)
    if glucocorticoid_therapy(ctx):
        return []
    found = usable_weight(ctx)
    policy: tuple[str, ...] = (
        "weight_max_age_days",
        "prednisone_round_mg",
        "prednisone_max_mg_per_day",
        "prednisone_dose_tolerance",
        "glucocorticoid_therapy_mg_per_day",
    )
    inputs = _conditions_used(ctx)
    child = (paediatric_note(ctx),) if is_child(ctx) else ()
    if child:
        policy = (*policy, "adult_age_years")
    if found.weight is None:
        return [
            CardIntent(
                "IS-1",
                "info",
                "Consider prednisone 1 mg/kg/day; record a current weight to compute the dose",
                (
                    *_start_problems(ctx),
                    f"No dose is suggested because {found.problem}.",
                    *child,
                    *_methylpred_note(ctx),
                ),
                problem="start",
                inputs=inputs or ("Condition",),
                unavailable=found.unavailable,
                policy_used=policy,
            )
        ]
    w = found.weight
    kg = w.value or 0.0
    ceiling = kg * (1 + ctx.knowledge.p("prednisone_dose_tolerance"))
    dose = prednisone_dose(
        kg,
        ctx.knowledge.p("prednisone_round_mg"),
        ctx.knowledge.p("prednisone_max_mg_per_day"),
        ceiling,
    )
    inputs = (*inputs, ref(w, "weight"))
    weight_line = (
        f"Weight used: {fmt_num(w.value)} kg measured {fmt_date(w.effective)} "
        f"({qualified('Observation', w.resource_id)})."
    )
    if dose.final_mg <= 0:
        return [_no_step_card(ctx, dose, weight_line, child, inputs, policy)]
    workup = workup_first(ctx)
    if workup:
        return [_workup_first_card(ctx, dose, workup, weight_line, child, inputs, policy)]
    mg = dose.final_mg
    how = _how_given(dose)
    text = f"prednisone {fmt_num(mg)} mg orally once daily ({how})"
    resource = medication_request(
        ctx.knowledge,
        drug="prednisone",
        mg=mg,
        route="oral",
        period=1,
        period_unit="d",
        text=text,
        patient_id=ctx.patient_id,
        now=ctx.now,
        note=child[0] if child else None,
    )
    summary = f"Consider prednisone {fmt_num(mg)} mg/day orally ({_how_given(dose, short=True)})"
    if child:
        summary += "; paediatric dose: specialist decision"
    return [
        CardIntent(
            "IS-1",
            "info",
            summary,
            (
                *_start_problems(ctx),
                weight_line,
                f"Dose: {dose.maths}.",
                *(_cap_line(dose) if dose.capped else ()),
                *child,
                *_methylpred_note(ctx),
            ),
            problem="start",
            suggestions=(
                SuggestionIntent(
                    f"Order prednisone {fmt_num(mg)} mg orally once daily",
                    (ActionIntent("create", f"Draft order: {text}", resource=resource),),
                ),
            ),
            inputs=inputs,
            policy_used=policy,
        )
    ]


def _how_given(dose: PrednisoneDose, short: bool = False) -> str:
    """'1 mg/kg/day for 72.4 kg', or with the cap the mg/kg actually suggested."""
    if dose.capped:
        return (
            f"{'' if short else fmt_num(dose.final_mg) + ' mg/day '}= {dose.mg_per_kg:.2f} "
            f"mg/kg/day for {fmt_num(dose.weight_kg)} kg, capped by local policy"
        )
    return f"1 mg/kg/day for {fmt_num(dose.weight_kg)} kg"


def _cap_line(dose: PrednisoneDose) -> tuple[str, ...]:
    return (
        f"The suggested {fmt_num(dose.final_mg)} mg/day is {dose.mg_per_kg:.2f} mg/kg/day, not "
        "1 mg/kg/day: the cap is local policy, not from the guideline.",
    )


def _no_step_card(
    ctx: RuleContext,
    dose: PrednisoneDose,
    weight_line: str,
    child: tuple[str, ...],
    inputs: tuple[str, ...],
    policy: tuple[str, ...],
) -> CardIntent:
    """1 mg/kg/day is below the smallest rounding step: no dose is suggested."""
    step = ctx.knowledge.p("prednisone_round_mg")
    return CardIntent(
        "IS-1",
        "info",
        f"Prednisone 1 mg/kg/day = {fmt_num(dose.raw_mg)} mg/day: below the {step:g} mg step, "
        "no dose suggested",
        (
            *_start_problems(ctx),
            weight_line,
            f"1 mg/kg/day x {fmt_num(dose.weight_kg)} kg = {fmt_num(dose.raw_mg)} mg/day cannot be "
            f"rounded to the local {step:g} mg step without exceeding the dose the order check "
            "accepts, so no order is suggested.",
            *child,
        ),
        problem="start",
        inputs=inputs,
        policy_used=policy,
    )


def _workup_first_card(
    ctx: RuleContext,
    dose: PrednisoneDose,
    why: str,
    weight_line: str,
    child: tuple[str, ...],
    inputs: tuple[str, ...],
    policy: tuple[str, ...],
) -> CardIntent:
    """Evaluate before treating: the dose is shown for planning, no one-click start."""
    return CardIntent(
        "IS-1",
        "info",
        f"Work-up first ({why}); then prednisone {fmt_num(dose.final_mg)} mg/day "
        f"({_how_given(dose, short=True)})",
        (
            "The guideline: before initiating treatment, evaluate muscle enzymes (CK at least), "
            f"inflammatory markers, antibodies and cardiac involvement. Here: {why}, so no "
            "prednisone order is offered yet; order the work-up first (see the ASSESS-1 card).",
            *_start_problems(ctx),
            weight_line,
            f"Dose for when the work-up is done: {dose.maths}.",
            *(_cap_line(dose) if dose.capped else ()),
            *child,
            *_methylpred_note(ctx),
        ),
        problem="start",
        inputs=inputs,
        policy_used=(*policy, "assessment_lookback_days"),
    )


def _is1_check_orders(ctx: RuleContext) -> list[CardIntent]:
    drafts = with_ingredient(ctx.selected(), "prednisone")
    if not drafts:
        return []
    found = usable_weight(ctx)
    cap = ctx.knowledge.p("prednisone_max_mg_per_day")
    tolerance = ctx.knowledge.p("prednisone_dose_tolerance")
    out: list[CardIntent] = []
    for d in drafts:
        mg_day = d.dose.mg_per_day if d.dose else None
        inputs = (med_ref(d), *_conditions_used(ctx))
        if mg_day is None:
            why = "; ".join(d.dose.unknown) if d.dose and d.dose.unknown else "no usable dosage"
            out.append(
                CardIntent(
                    "IS-1",
                    "info",
                    "Prednisone dose could not be checked against 1 mg/kg/day: see why",
                    (
                        f"The prednisone order {d.name} has no computable daily dose ({why}).",
                        "The guideline's dose is 1 mg/kg/day orally (refs 2, 1).",
                    ),
                    problem=f"unknown-dose:{d.reference}",
                    inputs=inputs,
                )
            )
            continue
        limit = (found.weight.value or 0.0) * (1 + tolerance) if found.weight else None
        over_weight = limit is not None and mg_day > limit + 1e-9
        over_cap = mg_day > cap + 1e-9
        if found.weight is None and not over_cap:
            out.append(
                CardIntent(
                    "IS-1",
                    "info",
                    f"Prednisone {fmt_num(mg_day)} mg/day not checked against 1 mg/kg/day: "
                    "no usable weight",
                    (
                        f"Ordered: {d.name}, {fmt_num(mg_day)} mg/day.",
                        f"It could not be compared with 1 mg/kg/day because {found.problem}.",
                    ),
                    problem=f"no-weight:{d.reference}",
                    inputs=inputs,
                    unavailable=found.unavailable,
                    policy_used=("weight_max_age_days",),
                )
            )
            continue
        if not (over_weight or over_cap):
            continue
        w = found.weight
        lines = [f"Ordered: {d.name}, **{fmt_num(mg_day)} mg/day**."]
        if is_child(ctx):
            lines.append(paediatric_note(ctx))
        if w is not None:
            lines.append(
                f"Weight {fmt_num(w.value)} kg on {fmt_date(w.effective)}: 1 mg/kg/day = "
                f"{fmt_num(w.value)} mg/day; with the local tolerance of {tolerance:.0%} the "
                f"ceiling is {fmt_num(limit)} mg/day; ordered = "
                f"{fmt_num(mg_day / (w.value or 1))} mg/kg/day."
            )
            inputs = (*inputs, ref(w, "weight"))
        if over_cap:
            lines.append(f"This is above the local maximum of {cap:g} mg/day.")
        lines.extend(_methylpred_note(ctx))
        out.append(
            CardIntent(
                "IS-1",
                "warning",
                f"Prednisone {fmt_num(mg_day)} mg/day exceeds "
                + ("1 mg/kg/day" if over_weight else f"the local {cap:g} mg/day cap")
                + ": review the dose",
                tuple(lines),
                problem=f"over:{d.reference}",
                inputs=inputs,
                unavailable=found.unavailable,
                policy_used=(
                    "prednisone_dose_tolerance",
                    "prednisone_max_mg_per_day",
                    "weight_max_age_days",
                ),
            )
        )
    return out


def methotrexate_intolerance(ctx: RuleContext) -> tuple[str, ...]:
    """Recorded methotrexate intolerance: allergy, or a stopped order with a reason."""
    found = [
        f"{qualified('AllergyIntolerance', a.resource_id)} ({a.text or 'methotrexate'})"
        for a in ctx.state.allergies
        if ("methotrexate" in a.ingredients or METHOTREXATE in a.classes)
        and a.clinical_status in (None, "active")
    ]
    found += [
        f"{med_ref(m)}: reason {m.status_reason}"
        for m in with_ingredient(ctx.state.medications, "methotrexate")
        if m.status in ("stopped", "cancelled") and m.status_reason
    ]
    return tuple(found)


def is2_methotrexate(ctx: RuleContext) -> list[CardIntent]:
    """IS-2: suggest once-weekly methotrexate; check every methotrexate order (everyone)."""
    if ctx.ordering:
        return _is2_check_orders(ctx)
    if not ctx.in_scope("myopathy"):
        return []
    therapy = glucocorticoid_therapy(ctx)
    if (
        not therapy
        or ctx.active_of(*ctx.knowledge.kinds("steroid_sparing"))
        or methotrexate_intolerance(ctx)
    ):
        return []
    steroids = tuple(u.medication for u in therapy)
    if is_child(ctx):
        return [_is2_child_card(ctx, therapy)]
    text = "methotrexate 15 mg subcutaneously once weekly"
    resource = medication_request(
        ctx.knowledge,
        drug="methotrexate",
        mg=15,
        route="subcutaneous",
        period=1,
        period_unit="wk",
        text=text,
        patient_id=ctx.patient_id,
        now=ctx.now,
    )
    return [
        CardIntent(
            "IS-2",
            "info",
            "Consider adding methotrexate 15 mg subcutaneously once weekly to the glucocorticoid",
            (
                "On glucocorticoid therapy ("
                + "; ".join(u.describe() for u in therapy)
                + ") without methotrexate or mycophenolate on record.",
                "The guideline: start methotrexate 15-20 mg/week (maximum 40 mg/week), preferably "
                "subcutaneously (ref 1). The suggestion uses the lower end, 15 mg once weekly, and "
                "is a once-WEEKLY dose.",
            ),
            problem="start",
            suggestions=(
                SuggestionIntent(
                    "Order methotrexate 15 mg subcutaneously once weekly",
                    (ActionIntent("create", f"Draft order: {text}", resource=resource),),
                ),
            ),
            inputs=(*(med_ref(m) for m in steroids), *_conditions_used(ctx)),
        )
    ]


def _is2_child_card(ctx: RuleContext, therapy: tuple[SteroidUse, ...]) -> CardIntent:
    """Under the adult age: the guideline's 15-20 mg/week is an adult dose; none is offered."""
    return CardIntent(
        "IS-2",
        "info",
        "Methotrexate with the glucocorticoid: the guideline's 15-20 mg/week is an adult dose; "
        "paediatric dosing is a specialist decision",
        (
            "On glucocorticoid therapy ("
            + "; ".join(u.describe() for u in therapy)
            + ") without methotrexate or mycophenolate on record.",
            "The guideline: start methotrexate 15-20 mg/week (maximum 40 mg/week), preferably "
            "subcutaneously (ref 1).",
            paediatric_note(ctx) + " No methotrexate dose is suggested.",
        ),
        problem="start",
        inputs=tuple(med_ref(u.medication) for u in therapy),
        policy_used=("adult_age_years", "glucocorticoid_therapy_mg_per_day"),
    )


def _days(value: float | None) -> str:
    if value is None:
        return "an unknown number of days"
    return "1 day" if abs(value - 1) < 1e-9 else f"{fmt_num(value)} days"


def _dose_line(d: Medication) -> str:
    """What was ordered, in mg per week when known; an unknown input is named, never '?'."""
    dose = d.dose
    if dose is None:
        return f"{d.name}: no dosage"
    days = f"doses on {_days(dose.days_per_week)} a week"
    if dose.mg_per_administration is None:
        return f"{d.name}: {days}; the dose in mg is unknown ({_unknown_why(d)})"
    per_day = dose.doses_per_dosing_day or 1
    each = (
        f"{fmt_num(dose.mg_per_administration)} mg"
        if abs(per_day - 1) < 1e-9
        else f"{fmt_num(per_day)} x {fmt_num(dose.mg_per_administration)} mg"
    )
    return f"{d.name}: {each} per dosing day, {days} = **{_per_week(d)}**"


def _unknown_why(d: Medication) -> str:
    if d.dose and d.dose.unknown:
        return "; ".join(d.dose.unknown)
    return "dosage missing or not structured"


def _per_week(d: Medication) -> str:
    if d.dose and d.dose.mg_per_week is not None:
        return f"{fmt_num(d.dose.mg_per_week)} mg/week"
    return f"weekly dose unknown ({_unknown_why(d)})"


def dosing_days(d: Medication) -> float | None:
    """Distinct days a week with a dose (the mapping's, else from the mean interval)."""
    dose = d.dose
    if dose is None:
        return None
    if dose.days_per_week is not None:
        return dose.days_per_week
    if dose.interval_days:
        return min(7.0, 7 / dose.interval_days)
    return None


def _mtx_problem(d: Medication) -> str:
    """Doses on more than one day a week, unknown, over 40 mg/week, or ok.

    A split weekly dose (several doses within one day, once a week) is one dosing day.
    """
    days = dosing_days(d)
    if days is not None and days > 1 + 1e-6:
        return "daily"
    dose = d.dose
    if dose is None or days is None or dose.mg_per_week is None:
        return "unknown"
    return "over" if dose.mg_per_week > 40 + 1e-9 else "ok"


def _is2_check_orders(ctx: RuleContext) -> list[CardIntent]:
    drafts = with_ingredient(ctx.selected(), "methotrexate")
    daily = [d for d in drafts if _mtx_problem(d) == "daily"]
    unknown = [d for d in drafts if _mtx_problem(d) == "unknown"]
    over = [d for d in drafts if _mtx_problem(d) == "over"]
    out: list[CardIntent] = []
    if daily:
        out.append(_daily_card(ctx, daily))
    if over:
        out.append(
            CardIntent(
                "IS-2",
                "critical",
                f"Methotrexate {_per_week(over[0])} is above the 40 mg/week maximum: "
                "reduce the dose",
                (
                    *(f"- {_dose_line(d)}" for d in over),
                    "The guideline: methotrexate 15-20 mg/week, maximum 40 mg/week (ref 1).",
                ),
                problem="over-40",
                inputs=tuple(med_ref(d) for d in over),
            )
        )
    if unknown:
        out.append(
            CardIntent(
                "IS-2",
                "info",
                "Methotrexate order has no computable weekly dose: confirm it is once weekly",
                (
                    *(f"- {d.name}: {_unknown_why(d)}" for d in unknown),
                    "Methotrexate is dosed once weekly (15-20 mg/week, maximum 40 mg/week, "
                    "ref 1); the frequency or dose of this order could not be read, so it was "
                    "not checked.",
                ),
                problem="unknown-dose",
                inputs=tuple(med_ref(d) for d in unknown),
            )
        )
    if ctx.in_scope("myopathy"):
        out.extend(_is2_start_info(ctx, [d for d in drafts if d not in daily + over + unknown]))
    return out


@dataclass(frozen=True)
class _Correction:
    """A one-day-a-week timing that keeps the intended weekly total, and why that total."""

    doses: int
    mg_week: float
    kept: str


def _correction(d: Medication, raw: dict[str, Any]) -> _Correction | str:
    """The weekly regimen an update would set, or why none is offered."""
    dose = d.dose
    if dose is None or dose.mg_per_administration is None or dose.administrations_per_day is None:
        return f"no update is offered: {_unknown_why(d)}"
    mg = dose.mg_per_administration
    if week_based(raw):
        # dosed by the week but spread over several days: the same doses, on one day
        doses = round(dose.administrations_per_day * 7)
        kept = f"the ordered weekly total, {fmt_num(mg * doses)} mg/week, moved to one day"
    else:
        # a weekly dose entered as daily (the classic error): one day's doses, once a week
        doses = round(dose.doses_per_dosing_day or 1)
        kept = (
            f"one dosing day's amount, {fmt_num(mg * doses)} mg, as the weekly dose (as ordered "
            f"the total would be {_per_week(d)}); check this is the intended weekly dose"
        )
    if doses < 1:
        return "no update is offered: the doses per week could not be counted"
    if mg * doses > 40 + 1e-9:
        return (
            f"no update is offered: {fmt_num(mg * doses)} mg on one day a week would exceed the "
            "40 mg/week maximum"
        )
    return _Correction(doses, mg * doses, kept)


def _daily_card(ctx: RuleContext, daily: list[Medication]) -> CardIntent:
    suggestions = []
    lines = []
    for d in daily:
        lines.append(f"- {_dose_line(d)}")
        raw = ctx.draft_resources.get(d.reference or "")
        if not raw:
            continue
        fix = _correction(d, raw)
        if isinstance(fix, str):
            lines.append(f"  ({fix}.)")
            continue
        mg = d.dose.mg_per_administration if d.dose else None
        updated, day = weekly(raw, fix.doses)
        regimen = (
            f"{fmt_num(mg)} mg once weekly"
            if fix.doses == 1
            else f"{fix.doses} doses of {fmt_num(mg)} mg on one day a week"
        )
        where = f" ({day})" if day else ""
        lines.append(
            f"  The update sets only the timing: {regimen}{where} = {fmt_num(fix.mg_week)} "
            f"mg/week; the dose per administration stays {fmt_num(mg)} mg. It keeps {fix.kept}."
        )
        suggestions.append(
            SuggestionIntent(
                f"Change to {regimen}",
                (
                    ActionIntent(
                        "update",
                        f"Set {d.name} to {regimen}{where} ({fmt_num(fix.mg_week)} mg/week); "
                        f"was {_per_week(d)}",
                        resource=updated,
                    ),
                ),
            )
        )
    return CardIntent(
        "IS-2",
        "critical",
        "Methotrexate ordered more often than weekly: it is a once-weekly drug, correct the "
        "frequency",
        (
            *lines,
            "The guideline doses methotrexate per week: 15-20 mg/week, maximum 40 mg/week "
            "(ref 1). This order puts doses on more than one day a week. A weekly dose split "
            "into several doses on one day is accepted.",
        ),
        problem="more-often-than-weekly",
        suggestions=tuple(suggestions),
        inputs=tuple(med_ref(d) for d in daily),
    )


def _is2_start_info(ctx: RuleContext, drafts: list[Medication]) -> list[CardIntent]:
    child = is_child(ctx)
    # Under the adult age the 15-20 mg/week start is an adult dose: never pushed up to it.
    low = [] if child else [d for d in drafts if d.dose and (d.dose.mg_per_week or 0) < 15 - 1e-9]
    oral = [d for d in drafts if d.dose and d.dose.route == "oral"]
    if not low and not oral:
        return []
    notes = []
    if low:
        notes.append(
            f"ordered {_per_week(low[0])}, below the 15-20 mg/week the guideline gives as the start"
        )
    if oral:
        notes.append("ordered orally; the guideline prefers subcutaneous")
    return [
        CardIntent(
            "IS-2",
            "info",
            "Methotrexate: the guideline starts 15-20 mg/week, preferably subcutaneously"
            if not child
            else "Methotrexate: the guideline prefers subcutaneous",
            (
                "Methotrexate order: " + "; ".join(notes) + ".",
                "The guideline: start methotrexate 15-20 mg/week (maximum 40 mg/week), preferably "
                "subcutaneously (ref 1).",
                *((paediatric_note(ctx),) if child else ()),
            ),
            problem="start-dose-route",
            inputs=tuple(med_ref(d) for d in [*low, *oral]),
        )
    ]


def is3_mmf(ctx: RuleContext) -> list[CardIntent]:
    """IS-3: methotrexate not tolerated -> name MMF (no dose: the text gives none)."""
    if not ctx.in_scope("myopathy"):
        return []
    evidence = methotrexate_intolerance(ctx)
    if not evidence:
        return []
    listing = "\n".join(f"- {e}" for e in evidence)
    if ctx.ordering:
        drafts = with_ingredient(ctx.selected(), "methotrexate")
        if not drafts:
            return []
        return [
            CardIntent(
                "IS-3",
                "warning",
                "Methotrexate intolerance is recorded: consider mycophenolate mofetil instead",
                (
                    "Methotrexate is being ordered, but intolerance is recorded:",
                    listing,
                    "The guideline: for patients unable to tolerate methotrexate, consider "
                    "mycophenolate mofetil (MMF) (ref 1). The guideline gives no MMF dose, so "
                    "none is suggested.",
                ),
                problem="intolerant-ordered",
                suggestions=tuple(
                    SuggestionIntent(
                        "Remove the methotrexate draft order",
                        (
                            ActionIntent(
                                "delete",
                                f"Remove the draft order {d.name}",
                                resource_id=d.reference,
                            ),
                        ),
                    )
                    for d in drafts
                    if d.reference
                ),
                inputs=(*evidence, *(med_ref(d) for d in drafts)),
            )
        ]
    if ctx.active_of(*ctx.knowledge.kinds("steroid_sparing")):
        return []
    return [
        CardIntent(
            "IS-3",
            "info",
            "Methotrexate not tolerated: the guideline suggests considering mycophenolate mofetil",
            (
                "Methotrexate intolerance is recorded and no steroid-sparing agent is active:",
                listing,
                "The guideline: for patients unable to tolerate methotrexate, consider "
                "mycophenolate mofetil (MMF) (ref 1). It gives no MMF dose, so none is suggested.",
            ),
            problem="intolerant",
            inputs=evidence,
        )
    ]
