"""REF-1, PT-1 [ref 1]; MON-1, MON-2; SKIN-1: follow-up on therapy, from the CK trend."""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.guideline.facts import (
    RuleContext,
    cond_ref,
    fmt_date,
    fmt_num,
    fmt_value,
    immunosuppressive_therapy,
    is_current,
    med_ref,
    qualified,
    ref,
    running_days,
    series,
    short_name,
    systemic_glucocorticoids,
    therapy_glucocorticoids,
    trend_table,
    upper_limit,
    valued,
    within,
)
from cds_service.guideline.intents import ActionIntent, CardIntent, SuggestionIntent
from cds_service.guideline.resources import service_request
from cds_service.guideline.rules.cautions import cardiac_involvement
from fhir_mappings.domain import Measurement, Medication


@dataclass(frozen=True)
class CkTrend:
    items: tuple[Measurement, ...]
    latest: Measurement
    uln: float | None
    uln_source: str
    rising: bool
    above: bool
    skipped: tuple[Measurement, ...] = ()

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(ref(m, "CK") for m in self.items)


def ck_trend(ctx: RuleContext) -> CkTrend | None:
    """The CK series with its upper limit (own range, else site default) and direction."""
    every = series(ctx.state, ctx.knowledge.kinds("ck_kinds"))
    items = valued(every)
    if not items:
        return None
    # valued() keeps the same objects: by identity, linear (by equality, quadratic at 10,000).
    kept = {id(m) for m in items}
    skipped = tuple(m for m in every if id(m) not in kept)
    latest = items[-1]
    uln, source = upper_limit(latest, ctx.knowledge.p("ck_upper_limit_default"))
    rise = ctx.knowledge.p("ck_rise_fraction")
    previous = items[-2] if len(items) > 1 else None
    rising = bool(previous and previous.value and (latest.value or 0) > previous.value * (1 + rise))
    above = uln is not None and (latest.value or 0) > uln
    return CkTrend(items, latest, uln, source, rising, above, skipped)


def _trend_block(trend: CkTrend) -> str:
    unusable = "".join(
        f"\n\nNot usable: {qualified('Observation', m.resource_id)} "
        f"({m.unusable_reason or 'no numeric value'})"
        for m in trend.skipped
    )
    return (
        "CK trend:\n"
        + trend_table(trend.items[-6:], "CK")
        + f"\n\nUpper limit of normal: {fmt_num(trend.uln)} U/L ({trend.uln_source})."
        + unusable
    )


def _days_on(ctx: RuleContext, meds: tuple[Medication, ...]) -> float | None:
    """Longest time any of these medications has been running, if known."""
    days = [d for d in (running_days(ctx, m) for m in meds) if d is not None]
    return max(days) if days else None


# In the guideline's own order; features of the patient move an option to the front.
REFRACTORY_OPTIONS = {
    "ivig": "Consider IVIG, especially helpful when skin features are prominent",
    "rituximab": "Consider rituximab (may take up to 26 weeks to show effect)",
    "cyclophosphamide": "For severe disease with major organ involvement, consider "
    "cyclophosphamide",
    "jak": "JAK inhibitors can be considered for progressive disease",
}
ESCALATED = ("ivig", "rituximab", "cyclophosphamide", "jak_inhibitor")


def ref1_refractory(ctx: RuleContext) -> list[CardIntent]:
    """REF-1: >= site weeks of glucocorticoid + MTX/MMF and CK above normal or rising."""
    if ctx.ordering or not ctx.in_scope("myopathy") or ctx.active_of(*ESCALATED):
        return []
    steroids, sparing = (
        therapy_glucocorticoids(ctx),
        ctx.active_of(*ctx.knowledge.kinds("steroid_sparing")),
    )
    if not steroids or not sparing:
        return []
    on_steroid, on_sparing = _days_on(ctx, steroids), _days_on(ctx, sparing)
    weeks = ctx.knowledge.p("refractory_weeks")
    if on_steroid is None or on_sparing is None:
        return []
    together = min(on_steroid, on_sparing)
    trend = ck_trend(ctx)
    if together < weeks * 7 or trend is None or not (trend.above or trend.rising):
        return []
    features = []
    order = []
    if ctx.state.has_category("dermatomyositis"):
        features.append("dermatomyositis (skin features): IVIG listed first")
        order.append("ivig")
    cardiac = cardiac_involvement(ctx)
    if cardiac or any(c.severity == "severe" for c in ctx.state.conditions):
        features.append("cardiac/major organ involvement or severe disease: cyclophosphamide")
        order.append("cyclophosphamide")
    if trend.rising:
        features.append("rising CK (progressive disease): JAK inhibitor")
        order.append("jak")
    order += [k for k in REFRACTORY_OPTIONS if k not in order]
    why = "rising" if trend.rising else "above the upper limit of normal"
    return [
        CardIntent(
            "REF-1",
            "warning",
            f"CK still {why} after {int(together) // 7} weeks of combined therapy: consider "
            "refractory options",
            (
                f"On {', '.join(short_name(m) for m in steroids)} and "
                f"{', '.join(short_name(m) for m in sparing)} together for "
                f"{int(together)} days (threshold {weeks:g} weeks, local policy within the "
                "guideline's 4-6 weeks).",
                _trend_block(trend),
                "Options the guideline lists for inadequate response (ref 1), ordered for this "
                "patient:\n"
                + "\n".join(f"{i}. {REFRACTORY_OPTIONS[k]}" for i, k in enumerate(order, 1)),
                *(("Ordering reflects: " + "; ".join(features) + ".",) if features else ()),
                "The guideline gives no doses for these options; none are suggested.",
            ),
            problem="refractory",
            inputs=(*(med_ref(m) for m in (*steroids, *sparing)), *trend.inputs, *cardiac),
            policy_used=(
                "refractory_weeks",
                "ck_rise_fraction",
                *(("ck_upper_limit_default",) if trend.uln_source.startswith("site") else ()),
            ),
        )
    ]


def pt1_physiotherapy(ctx: RuleContext) -> list[CardIntent]:
    """PT-1: CK normal or fallen from peak, no physiotherapy referral -> suggest one."""
    if ctx.ordering or not ctx.in_scope("myopathy"):
        return []
    trend = ck_trend(ctx)
    if trend is None:
        return []
    on_record = {(c.system, c.code) for c in ctx.state.service_requests}
    if on_record & ctx.knowledge.physio_on_record or (
        ctx.state.service_request_kinds & ctx.knowledge.physio_on_record_kinds
    ):
        return []
    peak = max(trend.items, key=lambda m: m.value or 0.0)
    fall = ctx.knowledge.p("ck_fall_fraction")
    latest = trend.latest.value or 0.0
    # "Controlled" needs inflammation to have been shown: a CK peak above its upper limit.
    peak_uln, _ = upper_limit(peak, ctx.knowledge.p("ck_upper_limit_default"))
    if peak_uln is None or (peak.value or 0) <= peak_uln:
        return []
    fallen = latest <= (peak.value or 0) * (1 - fall)
    if not (fallen or (trend.uln is not None and latest <= trend.uln)):
        return []
    if ref1_refractory(ctx):  # still above normal after weeks of therapy: not controlled
        return []
    how = (
        f"CK {fmt_num(latest)} U/L is within normal (upper limit {fmt_num(trend.uln)} U/L, "
        f"{trend.uln_source})"
        if trend.uln is not None and latest <= trend.uln
        else f"CK fell from a peak of {fmt_num(peak.value)} U/L ({fmt_date(peak.effective)}) "
        f"to {fmt_num(latest)} U/L, at least {fall:.0%} (local policy)"
    )
    code = ctx.knowledge.physio_referral
    resource = service_request(
        code,
        patient_id=ctx.patient_id,
        now=ctx.now,
        category="Physiotherapy referral",
        reason="Exercise programme monitored by a physiotherapist; inflammatory myopathy with "
        "acute inflammation controlled",
    )
    return [
        CardIntent(
            "PT-1",
            "info",
            "Acute inflammation controlled (CK): refer for a physiotherapist-monitored exercise "
            "programme",
            (
                f"{how}.",
                _trend_block(trend),
                "No physiotherapy referral is on record."
                if not ctx.unavailable("service_requests")
                else "Referrals on record could not be retrieved; check none exists.",
            ),
            problem="physiotherapy",
            suggestions=(
                SuggestionIntent(
                    "Refer to physiotherapy",
                    (
                        ActionIntent(
                            "create", "Draft referral to physiotherapy service", resource=resource
                        ),
                    ),
                ),
            ),
            inputs=trend.inputs,
            unavailable=ctx.unavailable("service_requests"),
            policy_used=(
                "ck_fall_fraction",
                *(("ck_upper_limit_default",) if trend.uln_source.startswith("site") else ()),
            ),
        )
    ]


MON1_TEXT = (
    "Also follow: muscle strength, functional status, the ability to taper corticosteroids, "
    "and an annual disease-damage assessment with a validated index."
)


def mon1_monitoring(ctx: RuleContext) -> list[CardIntent]:
    """MON-1: on immunosuppression: CK trend, a CK order when none recent, warn when rising."""
    if ctx.ordering or not ctx.in_scope("myopathy"):
        return []
    therapy = immunosuppressive_therapy(ctx)
    if not therapy:
        return []
    inputs = tuple(med_ref(m) for m in therapy)
    if ctx.unavailable("labs"):
        return [
            CardIntent(
                "MON-1",
                "info",
                "Monitor serial CK on immunosuppression: CK results could not be retrieved",
                (
                    "Serial CK is part of follow-up (target low-normal range); the lab "
                    "results could not be retrieved.",
                    MON1_TEXT,
                ),
                problem="monitoring",
                inputs=inputs,
                unavailable=("labs",),
            )
        ]
    interval = ctx.knowledge.p("ck_monitor_interval_days")
    trend = ck_trend(ctx)
    recent = trend is not None and within((trend.latest,), ctx.now, interval)
    suggestions: tuple[SuggestionIntent, ...] = ()
    if not recent:
        resource = service_request(
            ctx.knowledge.ck_order,
            patient_id=ctx.patient_id,
            now=ctx.now,
            category=None,
            reason="Serial CK on immunosuppression (myositis follow-up)",
        )
        suggestions = (
            SuggestionIntent(
                "Order CK",
                (ActionIntent("create", "Draft order: creatine kinase", resource=resource),),
            ),
        )
    rising = bool(trend and trend.rising)
    refractory = rising and bool(ref1_refractory(ctx))
    indicator = "warning" if rising and not refractory else "info"
    if trend is None:
        summary = "No CK on record on immunosuppression: order a CK (target low-normal)"
        body = ["No CK result is on record."]
    else:
        last = f"CK {fmt_value(trend.latest)}"
        if rising:
            summary = f"CK rising on immunosuppression ({last}): review disease activity"
        elif not recent:
            summary = f"CK due: last {last}; serial CK is the guideline's monitoring target"
        else:
            summary = f"Monitoring: {last}; target low-normal range"
        body = [_trend_block(trend)]
        if refractory:
            body.append("The rise is addressed on the refractory-disease card (REF-1).")
    if not recent:
        body.append(f"No CK within the last {interval:g} days (local policy).")
    return [
        CardIntent(
            "MON-1",
            indicator,
            summary,
            (
                f"On {', '.join(short_name(m) for m in therapy)}.",
                *body,
                "Serial CK measurements, target low-normal range.",
                MON1_TEXT,
            ),
            problem="monitoring",
            suggestions=suggestions,
            inputs=(*inputs, *(trend.inputs if trend else ())),
            policy_used=("ck_monitor_interval_days", "ck_rise_fraction"),
        )
    ]


@dataclass(frozen=True)
class Reading:
    label: str
    m: Measurement | None
    value: float | None
    threshold_name: str

    def high(self, ctx: RuleContext) -> bool:
        return self.value is not None and self.value >= ctx.knowledge.p(self.threshold_name)


def _latest(ctx: RuleContext, kinds_name: str, max_age: float) -> Measurement | None:
    items = within(valued(series(ctx.state, ctx.knowledge.kinds(kinds_name))), ctx.now, max_age)
    return items[-1] if items else None


def _glucose_mg_dl(m: Measurement | None) -> float | None:
    if m is None or m.value is None:
        return None
    return m.value * 18.016 if (m.unit or "").lower() == "mmol/l" else m.value


def mon2_steroid_effects(ctx: RuleContext) -> list[CardIntent]:
    """MON-2: on a systemic glucocorticoid: glucose/HbA1c, blood pressure, bone."""
    if ctx.ordering or not ctx.in_scope("spasm"):
        return []
    steroids = systemic_glucocorticoids(ctx)
    if not steroids:
        return []
    age = ctx.knowledge.p("vitals_max_age_days")
    glucose = _latest(ctx, "glucose_kinds", age)
    hba1c = _latest(ctx, "hba1c_kinds", age)
    systolic = _latest(ctx, "bp_systolic_kinds", age)
    diastolic = _latest(ctx, "bp_diastolic_kinds", age)
    readings = [
        Reading("HbA1c", hba1c, hba1c.value if hba1c else None, "hba1c_warning_percent"),
        Reading("Glucose", glucose, _glucose_mg_dl(glucose), "glucose_warning_mg_dl"),
        Reading(
            "Systolic BP",
            systolic,
            systolic.value if systolic else None,
            "bp_systolic_warning_mm_hg",
        ),
        Reading(
            "Diastolic BP",
            diastolic,
            diastolic.value if diastolic else None,
            "bp_diastolic_warning_mm_hg",
        ),
    ]
    lines, high, missing = [], [], []
    for r in readings:
        if r.m is None:
            missing.append(r.label)
            continue
        limit = ctx.knowledge.p(r.threshold_name)
        flag = r.high(ctx)
        lines.append(
            f"- {r.label}: {fmt_value(r.m)} ({fmt_date(r.m.effective)})"
            + (f" **at or above {limit:g}**" if flag else "")
        )
        if flag:
            high.append(f"{r.label} {fmt_value(r.m)}")
    unavailable = ctx.unavailable("vitals")
    names = ", ".join(short_name(m) for m in steroids)
    if high:
        summary = f"On {names}: {', '.join(high)}: review for steroid hyperglycemia/hypertension"
    else:
        summary = f"On {names}: monitor glucose, blood pressure and bone health"
    detail = [f"Active systemic glucocorticoid: {names}.", *(("\n".join(lines),) if lines else ())]
    if missing and not unavailable:
        detail.append(f"Not found within {age:g} days (local policy): {', '.join(missing)}.")
    detail.append(
        "Thresholds (local policy, standard values): HbA1c >= "
        f"{ctx.knowledge.p('hba1c_warning_percent'):g} %, random glucose >= "
        f"{ctx.knowledge.p('glucose_warning_mg_dl'):g} mg/dL, BP >= "
        f"{ctx.knowledge.p('bp_systolic_warning_mm_hg'):g}/"
        f"{ctx.knowledge.p('bp_diastolic_warning_mm_hg'):g} mm Hg."
    )
    detail.append(
        "Osteoporosis is a corticosteroid effect the guideline names: consider "
        "bone-health monitoring and protection (the guideline gives no specific "
        "measure)."
    )
    return [
        CardIntent(
            "MON-2",
            "warning" if high else "info",
            summary,
            tuple(detail),
            problem="steroid-effects",
            inputs=(
                *(med_ref(m) for m in steroids),
                *(ref(r.m, r.label) for r in readings if r.m is not None),
            ),
            unavailable=unavailable,
            policy_used=(
                "hba1c_warning_percent",
                "glucose_warning_mg_dl",
                "bp_systolic_warning_mm_hg",
                "bp_diastolic_warning_mm_hg",
                "vitals_max_age_days",
            ),
        )
    ]


def skin1_skin(ctx: RuleContext) -> list[CardIntent]:
    """SKIN-1: dermatomyositis or calcinosis: the guideline's headings, text only."""
    if ctx.ordering or not ctx.in_scope("myopathy"):
        return []
    found = [
        c
        for c in ctx.state.conditions
        if c.categories & {"dermatomyositis", "calcinosis"} and is_current(c)
    ]
    if not found:
        return []
    calcinosis = any("calcinosis" in c.categories for c in found)
    summary = (
        "Dermatomyositis/calcinosis: the guideline lists skin protection and calcinosis treatment"
        if calcinosis
        else "Dermatomyositis features: the guideline lists skin protection as adjunctive care"
    )
    return [
        CardIntent(
            "SKIN-1",
            "info",
            summary,
            (
                "Recorded: "
                + ", ".join(c.text or qualified("Condition", c.resource_id) for c in found)
                + ".",
                'The guideline lists "Skin Protection (for patients with dermatomyositis '
                'features)" and "Treatment of Calcinosis (if present)" as adjunctive therapies, '
                "without further content; this service therefore suggests no specific measure.",
            ),
            problem="skin",
            inputs=tuple(cond_ref(c) for c in found),
            with_override_reasons=False,
        )
    ]
