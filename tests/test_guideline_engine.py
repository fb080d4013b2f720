"""Engine contract: scopes, dedupe, ordering, hooks, and the rendered card shape."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.guideline.cards import _prune, render
from cds_service.guideline.intents import CardIntent
from cds_service.guideline.knowledge import RULE_IDS
from tests.guideline_builders import condition, dose, meas, med, orders, state
from tests.guideline_run import ENGINE, actions, ids, run


def test_engine_exposes_knowledge_version_and_never_has_relief0() -> None:
    assert ENGINE.version
    assert "RELIEF-0" not in RULE_IDS and "RELIEF-0" not in ENGINE.rules


def test_patient_in_no_scope_gets_no_cards_even_with_risky_drugs() -> None:
    meds = (
        med("diazepam", "d"),
        med("naproxen", "n", authored_days_ago=90),
        med("prednisone", "p", dose_=dose(60)),
        med("cyclobenzaprine", "c", authored_days_ago=90),
    )
    st = state(
        (condition("hypertension"),),
        medications=meds,
        measurements=(meas("hba1c", 9, 3, unit="%"),),
    )
    assert run("patient-view", st) == []
    drafts = orders(med("diazepam", "d2", draft=True), med("naproxen", "n2", draft=True, days=60))
    assert run("order-select", st, drafts) == []


def test_draft_also_listed_in_medications_prefetch_gives_one_card() -> None:
    draft = med("diazepam", "bz1", draft=True)
    as_prefetched = replace(draft, status="active", is_draft=False)  # an EHR quirk
    st = state((condition("spasm"),), medications=(as_prefetched,))
    cards = run("order-select", st, orders(draft))
    assert ids(cards) == ["CAU-2"]
    assert len(actions(cards[0])) == 1


def test_order_sign_considers_all_drafts() -> None:
    oc = orders(med("diazepam", "bz1", draft=True), selected=())
    assert ids(run("order-sign", state((condition("spasm"),)), oc)) == ["CAU-2"]


def test_cards_sorted_most_severe_first() -> None:
    st = state((condition("dermatomyositis"),), measurements=(meas("ck", 100, 2),))
    oc = orders(
        med("methotrexate", "m1", draft=True, dose_=dose(10, per_day=1)),
        med("diazepam", "bz", draft=True),
    )
    indicators = [c["indicator"] for c in run("order-select", st, oc)]
    assert indicators[0] == "critical"
    assert indicators == sorted(indicators, key=["critical", "warning", "info"].index)


def test_render_omits_empty_fields_and_truncates_long_summary() -> None:
    intent = CardIntent(
        "SKIN-1",
        "info",
        "x" * 200,
        ("detail",),
        problem="p",
        inputs=("Condition/1",),
        with_override_reasons=False,
    )
    card = render(intent, ENGINE.knowledge)
    assert len(card["summary"]) < 140
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert "overrideReasons" not in card
    prov = card["extension"]["org.cds-myopathy.provenance"]
    assert "unavailable" not in prov and "sitePolicy" not in prov
    assert card["source"]["label"].startswith("Treatment for Severe Inflammatory Muscle Spasms")


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.just("") | st.text(max_size=3),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.tuples(inner, inner)
            | st.dictionaries(st.text(max_size=3), inner, max_size=4)
        ),
        max_leaves=25,
    )
)
def test_cards_omit_empty_members_at_every_depth(value: Any) -> None:
    """Spec: optional fields are omitted, never sent as null, "", [] or {}; 0 and False stay."""
    pruned = _prune(value)

    def walk(node: Any, top: bool) -> None:
        if isinstance(node, dict | list):
            items = list(node.values()) if isinstance(node, dict) else node
            assert all(v not in (None, "", [], {}) for v in items)
            for v in items:
                walk(v, False)
        elif not top:
            assert not isinstance(node, tuple)

    walk(pruned, True)
    if isinstance(value, dict):
        falsy = {k: v for k, v in value.items() if type(v) in (int, bool) and not v}
        assert {k: pruned[k] for k in falsy} == falsy
