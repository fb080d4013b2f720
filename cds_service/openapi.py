"""OpenAPI 3 document generated from the same marshmallow schemas the routes use."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from cds_service.hooks import schemas
from cds_service.model.registry import Registry


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "error", **_json("Error")} for s in statuses}


def build_openapi(registry: Registry, version: str) -> dict[str, Any]:
    """Discovery, service call and feedback, with service ids from the registry."""
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
        ("HookRequest", schemas.HookRequestSchema),
        ("HookResponse", schemas.HookResponseSchema),
        ("Discovery", schemas.DiscoverySchema),
        ("Feedback", schemas.FeedbackSchema),
        ("Error", schemas.ErrorSchema),
    ):
        spec.components.schema(name, schema=schema)
    service_ids = [service.id for service in registry]
    service_param = {
        "name": "service_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": service_ids},
    }
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
    spec.path(
        path="/cds-services/{service_id}",
        operations={
            "post": {
                "summary": "Call a CDS service",
                "parameters": [service_param],
                "requestBody": {"required": True, **_json("HookRequest")},
                "responses": {
                    "200": {"description": "cards", **_json("HookResponse")},
                    **_errors(400, 401, 403, 404, 412, 413, 415, 429),
                },
            }
        },
    )
    spec.path(
        path="/cds-services/{service_id}/feedback",
        operations={
            "post": {
                "summary": "Feedback on cards",
                "parameters": [service_param],
                "requestBody": {"required": True, **_json("Feedback")},
                "responses": {
                    "200": {"description": "stored"},
                    **_errors(400, 401, 404, 413, 415, 429, 500, 503),
                },
            }
        },
    )
    document = spec.to_dict()
    document["security"] = [{"cdsHooksJwt": []}]
    document["components"]["schemas"]["FeedbackItem"]["oneOf"] = FEEDBACK_OUTCOMES
    document["components"]["schemas"]["HookRequest"]["anyOf"] = TOKEN_NEEDS_SERVER
    _null_not_any_object(document)
    return document


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
