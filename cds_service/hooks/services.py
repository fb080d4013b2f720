"""The guideline's CDS services: FHIR in (fhir_mappings), cards out (guideline engine)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cds_service.guideline import GuidelineEngine
from cds_service.hooks.registry import PREFETCH, REQUIRED_PREFETCH, Registry, ServiceDefinition
from cds_service.hooks.types import HookRequest, HookResult, ResolvedPrefetch
from fhir_mappings import map_order_context, map_patient_state

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


class GuidelineHandler:
    """Map the request's FHIR data to domain inputs and run the guideline engine."""

    def __init__(self, engine: GuidelineEngine) -> None:
        self.engine = engine

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
        cards = self.engine.run(
            request.hook,
            state,
            orders,
            now=now,
            patient_id=request.patient_id,
            draft_resources=drafts,
        )
        return HookResult(cards=cards, unavailable=dict(resolved.unavailable))


def _service(handler: GuidelineHandler, **texts: str) -> ServiceDefinition:
    """One guideline service: the same prefetch and handler, its own hook and texts."""
    return ServiceDefinition(
        handler=handler, prefetch=PREFETCH, required_prefetch=REQUIRED_PREFETCH, **texts
    )


def build_registry(engine: GuidelineEngine) -> Registry:
    """The services discovery lists: one per hook the guideline acts on."""
    handler = GuidelineHandler(engine)
    registry = Registry()
    registry.add(
        _service(
            handler,
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
