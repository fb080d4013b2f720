"""ASSESS-1: evaluate muscle enzymes, inflammatory markers, antibodies, troponin, ECG first."""

from __future__ import annotations

from cds_service.guideline.facts import (
    RuleContext,
    cond_ref,
    fmt_date,
    fmt_value,
    immunosuppressive_therapy,
    med_ref,
    ref,
    series,
    with_classes,
)
from cds_service.guideline.intents import ActionIntent, CardIntent, SuggestionIntent
from cds_service.guideline.knowledge import WorkupItem
from cds_service.guideline.resources import service_request
from fhir_mappings.domain import GLUCOCORTICOID, METHOTREXATE, Measurement

CLINICAL_NOTE = (
    "Also document the distribution, symmetry and progression of muscle weakness (clinical "
    "examination; this service cannot see it)."
)


def on_immunosuppression(ctx: RuleContext) -> bool:
    """Immunosuppressive therapy on record; a glucocorticoid only above the site threshold."""
    return bool(immunosuppressive_therapy(ctx))


def workup_first(ctx: RuleContext) -> str | None:
    """Why treatment should wait for the work-up (no CK result in the look-back), or None."""
    if ctx.unavailable("labs"):
        return "lab results could not be retrieved"
    window = ctx.knowledge.p("assessment_lookback_days")
    recent = [
        m
        for m in series(ctx.state, ctx.knowledge.kinds("ck_kinds"))
        if m.effective is not None and (ctx.days_since(m.effective) or 0) <= window
    ]
    if recent:
        return None
    return f"no CK result in the last {window:g} days"


def _trigger(ctx: RuleContext) -> tuple[str, ...] | None:
    """Why the check runs now (inputs), or None when it should not."""
    if ctx.ordering:
        drafts = with_classes(ctx.selected(), GLUCOCORTICOID, METHOTREXATE)
        return tuple(med_ref(d) for d in drafts) or None
    if on_immunosuppression(ctx):
        return None
    return tuple(cond_ref(c) for c in ctx.state.conditions if "myopathy" in c.categories)


def _latest(ctx: RuleContext, item: WorkupItem, window: float) -> Measurement | None:
    found = [
        m
        for m in series(ctx.state, item.kinds)
        if m.effective is not None and (ctx.days_since(m.effective) or 0) <= window
    ]
    return found[-1] if found else None


def assess1_workup(ctx: RuleContext) -> list[CardIntent]:
    """Myopathy scope before immunosuppression: list present results and order missing ones."""
    if not ctx.in_scope("myopathy"):
        return []
    trigger = _trigger(ctx)
    if trigger is None:
        return []
    if ctx.unavailable("labs"):
        return [
            CardIntent(
                "ASSESS-1",
                "info",
                "Check the initial myositis work-up: lab results could not be retrieved",
                (
                    "Before treatment the guideline asks for CK, aldolase, AST, ALT, LDH, ESR, "
                    "CRP, myositis-associated antibodies, troponin and ECG. The lab results "
                    "could not be retrieved, so which are missing is unknown.",
                    CLINICAL_NOTE,
                ),
                problem="workup",
                inputs=trigger,
                unavailable=("labs",),
            )
        ]
    window = ctx.knowledge.p("assessment_lookback_days")
    present: list[str] = []
    missing: list[WorkupItem] = []
    inputs = list(trigger)
    pending: list[str] = []
    ordered = ctx.state.service_request_kinds
    for item in ctx.knowledge.workup:
        m = _latest(ctx, item, window)
        if m is None and ordered & {item.key, *item.kinds}:
            pending.append(item.label)
        elif m is None:
            missing.append(item)
        else:
            present.append(f"- {item.label}: {fmt_value(m)} ({fmt_date(m.effective)})")
            inputs.append(ref(m, item.key))
    if not missing:
        return []
    no_ck_ever = not series(ctx.state, ctx.knowledge.kinds("ck_kinds"))
    indicator = "warning" if ctx.ordering and no_ck_ever else "info"
    names = ", ".join(i.label for i in missing)
    summary = (
        "No CK on record before immunosuppression: order the myositis work-up first"
        if indicator == "warning"
        else f"Complete the myositis work-up: {len(missing)} item(s) missing"
    )
    detail = [
        f"Results within the last {window:g} days (local policy):",
        "\n".join(present) if present else "- none",
        *((f"Ordered, no result yet: {', '.join(pending)}.",) if pending else ()),
        f"Missing: {names}.",
        CLINICAL_NOTE,
    ]
    verify = [i.label for i in missing if i.order.verify]
    if verify:
        detail.append("Order codes marked for verification by the site: " + ", ".join(verify) + ".")
    reason = "Initial assessment before immunosuppression (myositis guideline ASSESS-1)"
    actions = tuple(
        ActionIntent(
            "create",
            f"Order {i.label}",
            resource=service_request(
                i.order, patient_id=ctx.patient_id, now=ctx.now, reason=reason, category=None
            ),
        )
        for i in missing
    )
    return [
        CardIntent(
            "ASSESS-1",
            indicator,
            summary,
            tuple(detail),
            problem="workup",
            suggestions=(SuggestionIntent(f"Order the missing work-up ({len(missing)})", actions),),
            inputs=tuple(inputs),
            policy_used=("assessment_lookback_days",),
        )
    ]
