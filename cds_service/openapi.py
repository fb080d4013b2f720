"""OpenAPI 3 document generated from the same marshmallow schemas the routes use.

One path per registered service (discovery data): its request schema names its hook and the
context that hook needs, so whatever the document calls valid the service accepts, and what
it calls invalid the service refuses.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from cds_service.hooks import schemas
from cds_service.model.registry import Registry, ServiceDefinition

# The request members every hook shares; each service's request schema starts from a copy.
_BASE_REQUEST = "HookRequest"


def _json(schema: str | dict[str, Any]) -> dict[str, Any]:
    ref = schema if isinstance(schema, dict) else {"$ref": f"#/components/schemas/{schema}"}
    return {"content": {"application/json": {"schema": ref}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "error", **_json("Error")} for s in statuses}


def _context_name(hook: str) -> str:
    return "".join(part.title() for part in hook.split("-")) + "Context"


def build_openapi(registry: Registry, version: str, limits: Mapping[str, Any]) -> dict[str, Any]:
    """Discovery, then each service's call and feedback paths, from the registry.

    `limits` are the settings (config.py) whose bounds the document states.
    """
    spec = APISpec(
        title="CDS Hooks service: inflammatory myopathy guideline",
        version=version,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
    )
    # CDS Hooks 2.0 'Trusting CDS Clients': a signed JWT bearer token on every call.
    spec.components.security_scheme(
        "cdsHooksJwt", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for name, schema in (
        (_BASE_REQUEST, schemas.HookRequestSchema),
        ("HookResponse", schemas.HookResponseSchema),
        ("Discovery", schemas.DiscoverySchema),
        ("Feedback", schemas.FeedbackSchema),
        ("Error", schemas.ErrorSchema),
    ):
        spec.components.schema(name, schema=schema)
    hooks = sorted({service.hook for service in registry})
    for hook in hooks:
        spec.components.schema(_context_name(hook), schema=schemas.CONTEXT_SCHEMAS[hook])
    spec.path(
        path="/cds-services",
        operations={
            "get": {
                "summary": "CDS Hooks discovery",
                "responses": {
                    "200": {"description": "services", **_json("Discovery")},
                    **_errors(401),
                },
            }
        },
    )
    document = spec.to_dict()
    components = document["components"]["schemas"]
    base = components.pop(_BASE_REQUEST)
    for service in registry:
        request = _request_schema(service, base, int(limits["MAX_PREFETCH_KEYS"]))
        document["paths"].update(_service_paths(service, request))
    document["paths"].update(_unknown_service_paths([service.id for service in registry]))
    document["security"] = [{"cdsHooksJwt": []}]
    components["FeedbackItem"]["oneOf"] = FEEDBACK_OUTCOMES
    _bound(components, hooks, limits)
    _null_not_any_object(document)
    _ecma_patterns(document)
    return document


def _ecma_patterns(node: Any) -> None:
    """The schemas' patterns end with Python's \\Z: in ECMA 262 (OpenAPI) that end is $."""
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("\\Z"):
            node["pattern"] = pattern[:-2] + "$"
        for value in node.values():
            _ecma_patterns(value)
    elif isinstance(node, list):
        for value in node:
            _ecma_patterns(value)


def _service_paths(service: ServiceDefinition, request: dict[str, Any]) -> dict[str, Any]:
    """Spec 'Calling a CDS Service' and 'Feedback' for one service."""
    call = {
        "summary": service.title,
        "description": service.description,
        "requestBody": {"required": True, **_json(request)},
        "responses": {
            "200": {"description": "cards", **_json("HookResponse")},
            **_errors(400, 401, 403, 412, 413, 415, 429),
        },
    }
    feedback = {
        "summary": f"Feedback on the cards of {service.id}",
        "requestBody": {"required": True, **_json("Feedback")},
        "responses": {
            "200": {"description": "stored"},
            **_errors(400, 401, 413, 415, 429, 500, 503),
        },
    }
    return {
        f"/cds-services/{service.id}": {"post": call},
        f"/cds-services/{service.id}/feedback": {"post": feedback},
    }


def _unknown_service_paths(service_ids: list[str]) -> dict[str, Any]:
    """Any other service id is answered 404 before the body is read."""
    parameter = {
        "name": "service_id",
        "in": "path",
        "required": True,
        "description": "an id discovery does not list",
        # One URL path segment that no client normalizes away ("." and "..").
        "schema": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$",
            "not": {"enum": service_ids},
        },
    }
    operation = {
        "summary": "No such service",
        "parameters": [parameter],
        "responses": _errors(401, 404, 429),
    }
    return {
        "/cds-services/{service_id}": {"post": dict(operation)},
        "/cds-services/{service_id}/feedback": {"post": dict(operation)},
    }


def _request_schema(
    service: ServiceDefinition, base: dict[str, Any], max_keys: int
) -> dict[str, Any]:
    """The service's request: its hook, that hook's context, its prefetch keys."""
    request = copy.deepcopy(base)
    properties = request["properties"]
    properties["hook"] = {"type": "string", "enum": [service.hook]}
    properties["context"] = {"$ref": f"#/components/schemas/{_context_name(service.hook)}"}
    properties["prefetch"] = _prefetch_schema(service, max_keys)
    cross_field = [{"anyOf": TOKEN_NEEDS_SERVER}, {"anyOf": _data_obtainable(service)}]
    request["allOf"] = copy.deepcopy(cross_field)
    return request


def _prefetch_schema(service: ServiceDefinition, max_keys: int) -> dict[str, Any]:
    """Spec 'Prefetch': a value (or null: no such data) per template; others are ignored."""
    keys: dict[str, Any] = {
        key: {"description": f"the result of {template}", "nullable": True}
        for key, template in service.prefetch.items()
    }
    if "patient" in keys:
        # JSON Schema cannot compare two members: hooks.calls._check_patient_matches does (400).
        keys["patient"]["description"] += (
            "; a Patient with a string id must be the patient of context.patientId"
            " (x-cds-equals), else 400 with details prefetch.patient.id"
        )
        keys["patient"]["properties"] = {"id": {"x-cds-equals": "#/context/patientId"}}
    return {
        "type": "object",
        "nullable": True,
        "maxProperties": max_keys,  # security.bounds: more keys is 413
        "properties": keys,
        "additionalProperties": {"nullable": True},
    }


def _data_obtainable(service: ServiceDefinition) -> list[dict[str, Any]]:
    """Spec: required data neither prefetched nor fetchable is 412 (cds_service.fhir.prefetch).

    So: a fhirServer to fetch from (whether it may be used is the allow-list's answer, 403),
    or every required key sent as null or as a usable value.
    """
    sent = {key: {"anyOf": [{"enum": [None]}, USABLE_VALUE]} for key in service.required_prefetch}
    return [
        {"required": ["fhirServer"], "properties": {"fhirServer": {"type": "string"}}},
        {
            "required": ["prefetch"],
            "properties": {
                "prefetch": {
                    "type": "object",
                    "required": sorted(service.required_prefetch),
                    "properties": sent,
                }
            },
        },
    ]


def _bound(components: dict[str, Any], hooks: list[str], limits: Mapping[str, Any]) -> None:
    """security.bounds' and the feedback route's limits on lists, in the schemas (413)."""
    orders = int(limits["MAX_DRAFT_ORDERS"])
    for hook in hooks:
        context = components[_context_name(hook)]["properties"]
        if "draftOrders" in context:
            context["draftOrders"]["properties"]["entry"]["maxItems"] = orders
        if "selections" in context:
            context["selections"]["maxItems"] = orders
    components["Feedback"]["properties"]["feedback"]["maxItems"] = int(limits["MAX_FEEDBACK_ITEMS"])


def _null_not_any_object(node: Any) -> None:
    """apispec writes a nullable Nested as anyOf [any object, $ref]: make the first `null` only.

    Otherwise the document accepts any object where the schema accepts null or the nested shape.
    """
    if isinstance(node, dict):
        for option in node.get("anyOf") or []:
            if option == {"type": "object", "nullable": True}:
                option["enum"] = [None]
        for value in node.values():
            _null_not_any_object(value)
    elif isinstance(node, list):
        for value in node:
            _null_not_any_object(value)


# What fhir.prefetch uses as sent (classify_value, _next_link): a FHIR resource, not an
# OperationOutcome, with no next page. Anything else is fetched again or unavailable.
_NEXT_PAGE = {
    "type": "object",
    "required": ["relation", "url"],
    "properties": {
        "relation": {"enum": ["next"]},
        "url": {"not": {"enum": [None, False, 0, "", [], {}]}},
    },
}
USABLE_VALUE = {
    "type": "object",
    "required": ["resourceType"],
    "not": {"properties": {"resourceType": {"enum": ["OperationOutcome"]}}},
    "properties": {"link": {"items": {"not": _NEXT_PAGE}}},
}

# HookRequestSchema's cross-field check: a fhirAuthorization comes with its fhirServer.
TOKEN_NEEDS_SERVER = [
    {"not": {"required": ["fhirAuthorization"]}},
    {"properties": {"fhirAuthorization": {"enum": [None]}}},
    {"required": ["fhirServer"], "properties": {"fhirServer": {"type": "string"}}},
]

# What FeedbackItemSchema's cross-field check enforces, said in the document (spec 'Feedback'):
# accepted names the suggestions taken; overridden takes none.
FEEDBACK_OUTCOMES = [
    {
        "properties": {"outcome": {"enum": ["accepted"]}, "acceptedSuggestions": {"minItems": 1}},
        "required": ["acceptedSuggestions"],
    },
    {"properties": {"outcome": {"enum": ["overridden"]}, "acceptedSuggestions": {"maxItems": 0}}},
]
