"""Property: no rule raises on any shape of domain input, and every card passes the checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.guideline import facts
from cds_service.guideline.cards import render
from cds_service.guideline.engine import GuidelineEngine
from cds_service.guideline.facts import RuleContext
from cds_service.guideline.knowledge import RULE_IDS
from cds_service.guideline.rules import response
from fhir_mappings.domain import OrderContext
from tests.guideline_builders import CLASSES, NOW, condition, dose, meas, med, state
from tests.guideline_cardcheck import check_card
from tests.guideline_run import ENGINE

CATEGORIES = ["myopathy", "spasm", "dermatomyositis", "calcinosis", "cardiac_involvement"]
KINDS = ["ck", "weight", "troponin", "hba1c", "glucose", "bp_systolic", "aldolase", "ecg"]


@st.composite
def medications(draw: Any, draft: bool) -> Any:
    ingredient = draw(st.sampled_from(sorted(CLASSES)))
    mg = draw(st.one_of(st.none(), st.floats(0, 500)))
    the_dose = draw(
        st.one_of(
            st.none(),
            st.builds(
                dose,
                st.just(mg),
                st.sampled_from([None, 0.5, 1, 3]),
                st.sampled_from([None, 1, 7, 14]),
                st.sampled_from([None, "oral", "subcutaneous", "topical"]),
            ),
        )
    )
    return med(
        ingredient,
        draw(st.sampled_from(["a", "b", "c"])),
        draft=draft,
        dose_=the_dose,
        days=draw(st.one_of(st.none(), st.floats(0, 400))),
        authored_days_ago=draw(st.floats(0, 400)),
        status=None if draft else draw(st.sampled_from(["active", "stopped"])),
        status_reason=draw(st.sampled_from([None, "nausea"])),
    )


@st.composite
def measurements(draw: Any) -> Any:
    m = meas(
        draw(st.sampled_from(KINDS)),
        draw(st.one_of(st.none(), st.floats(0, 20000))),
        draw(st.floats(0, 800)),
        high=draw(st.one_of(st.none(), st.floats(1, 500))),
        rid=f"Observation/{draw(st.integers(0, 5))}",
    )
    if draw(st.booleans()) and m.effective:  # naive datetimes from odd sources
        m = msgspec.structs.replace(m, effective=m.effective.replace(tzinfo=None))
    return m


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cats=st.lists(st.sampled_from(CATEGORIES), max_size=3),
    meds=st.lists(medications(False), max_size=4),
    drafts=st.lists(medications(True), max_size=3),
    obs=st.lists(measurements(), max_size=8),
    hook=st.sampled_from(["patient-view", "order-select", "order-sign"]),
    unavailable=st.lists(st.sampled_from(["labs", "weight", "vitals"]), max_size=2),
)
def test_rules_never_raise_and_cards_are_valid(
    cats: Any, meds: Any, drafts: Any, obs: Any, hook: str, unavailable: Any
) -> None:
    patient = state(
        tuple(condition(c, f"Condition/{i}") for i, c in enumerate(cats)),
        medications=tuple(meds),
        measurements=tuple(obs),
        unavailable=tuple(unavailable),
    )
    orders = OrderContext(tuple(drafts), frozenset()) if hook != "patient-view" else None
    ctx = RuleContext(hook, patient, orders, NOW, "p1", ENGINE.knowledge, {})
    for rec_id in RULE_IDS:
        for intent in ENGINE.rules[rec_id](ctx):  # called directly: no safety net here
            check_card(render(intent, ENGINE.knowledge))
    # Facts the rules share are derived once a call: remembered, each reads as a new context's.
    assert ctx._memo, "no fact was remembered"
    for key, value in ctx._memo.items():
        fresh = RuleContext(hook, patient, orders, NOW, "p1", ENGINE.knowledge, {})
        assert _fact(fresh, key) == value, key


def _fact(ctx: RuleContext, key: Any) -> Any:
    """The fact a memo key stands for, derived on a context that remembers nothing yet."""
    if isinstance(key, tuple):
        name, *args = key
        return ctx.active_of(*args[0]) if name == "active_of" else getattr(ctx, name)(*args)
    if key == "active":
        return ctx.active()
    module = facts if hasattr(facts, key) else response  # the CK trend is response's fact
    return getattr(module, key)(ctx)


def test_failing_rule_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(ctx: RuleContext) -> list[Any]:
        raise ZeroDivisionError("defect")

    engine = GuidelineEngine(ENGINE.knowledge, {**ENGINE.rules, "CAU-2": broken})
    cards = engine.run(
        "order-select",
        state((condition("spasm"),)),
        OrderContext((med("diazepam", "x", draft=True),), frozenset()),
        now=datetime.now(UTC) - timedelta(0),
        patient_id="p1",
        draft_resources={},
    )
    assert cards == []
    assert "guideline rule CAU-2 failed" in caplog.text
