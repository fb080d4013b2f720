"""PT-1 [ref 1]; MON-1, MON-2; SKIN-1: follow-up on therapy, from the CK trend."""

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
    series,
    short_name,
    systemic_glucocorticoids,
    valued,
    within,
)
from cds_service.guideline.intents import ActionIntent, CardIntent, SuggestionIntent
from cds_service.guideline.resources import service_request
from cds_service.guideline.rules.refractory import ref1_refractory
from cds_service.guideline.rules.response import CkTrend, ck_policy, ck_trend
from fhir_mappings.domain import Measurement


def _referred(ctx: RuleContext) -> bool:
    on_record = {(c.system, c.code) for c in ctx.state.service_requests}
    return bool(on_record & ctx.knowledge.physio_on_record) or bool(
        ctx.state.service_request_kinds & ctx.knowledge.physio_on_record_kinds
    )


def pt1_physiotherapy(ctx: RuleContext) -> list[CardIntent]:
    """PT-1: CK responded (within normal, or fallen from an abnormal peak), no referral yet."""
    if ctx.ordering or not ctx.in_scope("myopathy"):
        return []
    trend = ck_trend(ctx)
    # "Controlled" needs inflammation to have been shown: a CK peak above its upper limit.
    if trend is None or _referred(ctx) or not trend.peak_above or not trend.responded:
        return []
    if trend.within_normal:
        summary = (
            f"CK back within normal ({fmt_num(trend.value)} U/L, upper limit "
            f"{fmt_num(trend.uln)}): refer for a physiotherapist-monitored exercise programme"
        )
        status = "CK is back within the normal range."
    else:
        summary = (
            f"CK {fmt_num(trend.value)} U/L, {trend.fallen:.0%} below its peak but above normal "
            f"({fmt_num(trend.uln)}): supervised exercise may begin (local policy)"
        )
        status = (
            "CK is still above its upper limit of normal. The guideline says to begin "
            '"as soon as acute inflammation is controlled" without defining control by CK; '
            f"this site takes a fall of at least {trend.fall_fraction:.0%} from the peak as "
            "enough to begin (local policy)."
        )
    code = ctx.knowledge.physio_referral
    resource = service_request(
        code,
        patient_id=ctx.patient_id,
        now=ctx.now,
        category="Physiotherapy referral",
        reason="Exercise programme monitored by a physiotherapist; inflammatory myopathy, "
        + trend.measured(),
    )
    return [
        CardIntent(
            "PT-1",
            "info",
            summary,
            (
                trend.measured(),
                status,
                trend.definitions(),
                trend.block(),
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
            policy_used=ck_policy(trend),
            fold_label="physiotherapy referral",
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
                fold_label="CK results could not be retrieved",
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
        label = "no CK on record"
    else:
        last = f"CK {fmt_value(trend.latest)}"
        where = _position(trend)
        if rising:
            pct = trend.value / (trend.previous.value or 1) - 1 if trend.previous else 0.0
            summary = (
                f"CK rising on immunosuppression ({last}, +{pct:.0%} vs previous, {where}): "
                "review disease activity"
            )
        elif not recent:
            summary = f"CK due: last {last}; serial CK is the guideline's monitoring target"
        else:
            summary = f"Monitoring: {last} ({where}); target low-normal range"
        label = f"CK due (last {last})" if not recent else f"{last} ({where})"
        body = [trend.measured(), trend.definitions(), trend.block()]
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
            policy_used=("ck_monitor_interval_days", *ck_policy(trend)),
            fold_label=label,
        )
    ]


def _position(trend: CkTrend) -> str:
    """Where the latest CK lies against its upper limit, in a few words."""
    if trend.uln is None:
        return "no upper limit known"
    if trend.within_normal:
        return "within normal"
    return f"{trend.value / trend.uln:.1f}x upper limit"


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
            fold_label="steroid effects: " + (", ".join(high) if high else "glucose, BP, bone"),
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
            fold_label="skin protection" + (", calcinosis" if calcinosis else ""),
            inputs=tuple(cond_ref(c) for c in found),
            with_override_reasons=False,
        )
    ]
