"""A hook call from parsed request to cards: validation, prefetch policy, the service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from cds_service.errors import InvalidRequest, PrefetchUnavailable
from cds_service.fhir.prefetch import PrefetchResolver
from cds_service.hooks.schemas import CONTEXT_SCHEMAS, HookRequestSchema
from cds_service.model.registry import ServiceDefinition
from cds_service.model.types import HookRequest, HookResult, ResolvedPrefetch

_REQUEST_SCHEMA = HookRequestSchema()
_CONTEXT_SCHEMAS = {hook: schema() for hook, schema in CONTEXT_SCHEMAS.items()}


def _field_errors(exc: ValidationError, prefix: str = "") -> dict[str, Any]:
    messages = exc.normalized_messages()
    return {f"{prefix}{key}": value for key, value in messages.items()}


def parse_hook_request(body: Any, service: ServiceDefinition) -> HookRequest:
    """Validate the body against the request and hook context schemas (400 naming fields)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    try:
        data = _REQUEST_SCHEMA.load(body)
    except ValidationError as exc:
        raise InvalidRequest("invalid CDS Hooks request", details=_field_errors(exc)) from None
    if data["hook"] != service.hook:
        raise InvalidRequest(
            f"service {service.id!r} answers hook {service.hook!r}, not {data['hook']!r}",
            details={"hook": [f"must be {service.hook}"]},
        )
    try:
        _CONTEXT_SCHEMAS[service.hook].load(data["context"])
    except ValidationError as exc:
        raise InvalidRequest(
            "invalid context for hook " + service.hook, details=_field_errors(exc, "context.")
        ) from None
    _check_patient_matches(body.get("prefetch"), body["context"])
    # Keep the original context: the schema drops nothing, but we want the client's values.
    return HookRequest(
        hook=data["hook"],
        hook_instance=str(data["hookInstance"]),
        context=body["context"],
        fhir_server=body.get("fhirServer"),
        fhir_authorization=body.get("fhirAuthorization"),
        prefetch=body.get("prefetch"),
    )


def _check_patient_matches(prefetch: Any, context: Mapping[str, Any]) -> None:
    """A prefetched Patient must be the context's patient: cards for another chart are unsafe."""
    patient = prefetch.get("patient") if isinstance(prefetch, Mapping) else None
    if not isinstance(patient, Mapping) or patient.get("resourceType") != "Patient":
        return
    patient_id = patient.get("id")
    if isinstance(patient_id, str) and patient_id != context.get("patientId"):
        raise InvalidRequest(
            "prefetch patient is not the patient of context.patientId",
            details={"prefetch.patient.id": ["must equal context.patientId"]},
        )


def enforce_required(resolved: ResolvedPrefetch, service: ServiceDefinition) -> None:
    """Spec: data needed and obtainable neither from prefetch nor FHIR server -> 412."""
    missing = {k: v for k, v in resolved.unavailable.items() if k in service.required_prefetch}
    if missing:
        raise PrefetchUnavailable(
            "required data could not be obtained: " + ", ".join(sorted(missing)),
            details={"unavailable": missing},
        )


def run_hook(
    service: ServiceDefinition, request: HookRequest, resolver: PrefetchResolver
) -> HookResult:
    """Resolve prefetch under the explicit policy, then run the service."""
    resolved = resolver.resolve(request, service)
    enforce_required(resolved, service)
    result = service.handler(request, resolved)
    result.inputs = resolved.data
    return result
