"""The guideline's CDS services: FHIR in (fhir_mappings), cards out (guideline engine)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cds_service.guideline import GuidelineEngine
from cds_service.guideline.needs import REQUIRED_PREFETCH, prefetch_templates
from cds_service.guideline.rules.scope import readable
from cds_service.model.registry import Registry, ServiceDefinition
from cds_service.model.types import HookRequest, HookResult, ResolvedPrefetch
from fhir_mappings import load_terminology, map_order_context, map_patient_state
from fhir_mappings.domain import OrderContext, PatientState

GUIDELINE = "Treatment for Severe Inflammatory Muscle Spasms"


def draft_resources(draft_orders: Any) -> dict[str, dict[str, Any]]:
    """Draft orders by "Type/id", so an update action can send the whole resource."""
    found: dict[str, dict[str, Any]] = {}
    entries = draft_orders.get("entry") if isinstance(draft_orders, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") and resource.get("id"):
            found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


def unusable_inputs(state: PatientState, orders: OrderContext | None) -> list[dict[str, str]]:
    """Inputs sent but unusable, reported, never dropped: diagnosis records that failed
    validation, and any resource whose JSON could not be read (a lone surrogate)."""
    issues = (*state.issues, *(orders.issues if orders is not None else ()))
    return [
        {"resource": i.resource, "reason": readable(i.reason)}
        for i in issues
        if i.unreadable or i.resource.startswith("Condition/")
    ]


# Response extension listing the inputs sent but unusable: invalid is not absent.
UNUSABLE_KEY = "org.cds-myopathy.unusable-inputs"
# Response extension listing the problems held back on patient-view (snoozed by an override).
SNOOZED_KEY = "org.cds-myopathy.snoozed"
# (patient id, days) -> (recommendation id, problem) overridden with a reason in those days.
SnoozeLookup = Callable[[str | None, float], frozenset[tuple[str, str]]]


class GuidelineHandler:
    """Map the request's FHIR data to domain inputs and run the guideline engine."""

    def __init__(self, engine: GuidelineEngine, snoozes: SnoozeLookup | None = None) -> None:
        self.engine = engine
        self.snoozes = snoozes

    def _snoozed(self, request: HookRequest) -> Callable[[], frozenset[tuple[str, str]]] | None:
        """The lookup of overridden problems for this patient, or None when snoozing is off."""
        days = self.engine.knowledge.p("override_snooze_days")
        lookup = self.snoozes
        if request.hook != "patient-view" or lookup is None or days <= 0:
            return None
        return lambda: lookup(request.patient_id, days)

    def __call__(self, request: HookRequest, resolved: ResolvedPrefetch) -> HookResult:
        now = datetime.now(UTC)
        state = map_patient_state(resolved.data, now=now, unavailable=resolved.unavailable)
        orders = None
        drafts: dict[str, dict[str, Any]] = {}
        if request.hook in ("order-select", "order-sign"):
            draft_bundle = request.context.get("draftOrders")
            selections = request.context.get("selections") or []
            orders = map_order_context(draft_bundle, selections, now=now)
            drafts = draft_resources(draft_bundle)
        answer = self.engine.answer(
            request.hook,
            state,
            orders,
            now=now,
            patient_id=request.patient_id,
            draft_resources=drafts,
            snoozed=self._snoozed(request),
        )
        days = self.engine.knowledge.p("override_snooze_days")
        extension: dict[str, Any] = (
            {
                SNOOZED_KEY: [
                    {"recommendationId": rec, "problem": problem, "snoozeDays": days}
                    for rec, problem in answer.snoozed
                ]
            }
            if answer.snoozed
            else {}
        )
        unusable = unusable_inputs(state, orders)
        if unusable:
            extension[UNUSABLE_KEY] = unusable
        return HookResult(
            cards=answer.cards,
            unavailable=dict(resolved.unavailable),
            extension=extension,
            silent_cards=answer.silent,
        )


ROLLOUT_KEY = "org.cds-myopathy.rollout"


def rollout_modes(engine: GuidelineEngine, hook: str | None = None) -> dict[str, str]:
    """Rollout mode of each recommendation (acting on `hook`, if given), in guideline order."""
    knowledge = engine.knowledge
    return {
        rec_id: knowledge.mode(rec_id)
        for rec_id, rec in knowledge.recommendations.items()
        if hook is None or hook in rec.hooks
    }


def _service(
    handler: GuidelineHandler, prefetch: dict[str, str], **texts: str
) -> ServiceDefinition:
    """One guideline service: the same prefetch and handler, its own hook and texts.

    Discovery carries the rollout mode of each recommendation the hook runs (extension
    `org.cds-myopathy.rollout`); the description names those not active.
    """
    modes = rollout_modes(handler.engine, texts["hook"])
    held = [f"{rec_id} {mode}" for rec_id, mode in modes.items() if mode != "active"]
    if held:
        texts["description"] += (
            " Rollout: " + ", ".join(held) + " (silent: evaluated and audited, not shown; "
            "off: not evaluated)."
        )
    return ServiceDefinition(
        handler=handler,
        prefetch=prefetch,
        required_prefetch=REQUIRED_PREFETCH,
        extension={ROLLOUT_KEY: modes},
        **texts,
    )


def build_registry(engine: GuidelineEngine, snoozes: SnoozeLookup | None = None) -> Registry:
    """The services discovery lists: one per hook the guideline acts on."""
    handler = GuidelineHandler(engine, snoozes)
    prefetch = prefetch_templates(engine.knowledge, load_terminology())
    registry = Registry()
    registry.add(
        _service(
            handler,
            prefetch,
            id="myopathy-patient-view",
            hook="patient-view",
            title=f"{GUIDELINE}: chart review",
            description=(
                "On opening the chart of a patient with inflammatory myopathy or muscle spasm: "
                "missing work-up, first-line immunosuppression (weight-based prednisone, weekly "
                "methotrexate), refractory options, monitoring, and cautions on active medications."
            ),
        )
    )
    registry.add(
        _service(
            handler,
            prefetch,
            id="myopathy-order-select",
            hook="order-select",
            title=f"{GUIDELINE}: medication orders",
            description=(
                "While medications are being selected: checks prednisone and methotrexate doses "
                "(methotrexate daily-instead-of-weekly for every patient), and cautions on muscle "
                "relaxants, benzodiazepines and NSAIDs for patients in the guideline's scope."
            ),
        )
    )
    registry.add(
        _service(
            handler,
            prefetch,
            id="myopathy-order-sign",
            hook="order-sign",
            title=f"{GUIDELINE}: order signing",
            description=(
                "The same medication checks as the order-select service, at signing, for EHRs "
                "that call only order-sign."
            ),
        )
    )
    return registry
