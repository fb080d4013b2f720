"""Marshmallow schemas, one per CDS Hooks 2.0.1 object (spec sections in each docstring)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import (
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

HOOKS = ("patient-view", "order-select", "order-sign")
SUMMARY_MAX = 139  # spec 'Card Attributes': summary under 140 characters
_NON_EMPTY = validate.Length(min=1)
# Patterns end with \Z and use explicit ASCII classes (no \s, \d): read as the OpenAPI
# document's ECMA 262 patterns (openapi.py writes \Z as $), they accept the same strings.
# A reference such as "MedicationRequest/abc" (spec: selections, resourceId).
_REFERENCE = validate.Regexp(r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}\Z", error="must be Type/id")
# A FHIR R4 `id` (hook context patientId, encounterId): it is put into prefetch query URLs.
_FHIR_ID = validate.Regexp(r"^[A-Za-z0-9\-.]{1,64}\Z", error="must be a FHIR id")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# What outcomeTimestamp may be, in the OpenAPI document too: RFC 3339 with an offset, years
# 1000-9998 (a year 1 or 9999 date-time may not fit in UTC: 400, and the schema says so).
_TIMESTAMP = re.compile(
    r"^(?:[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9])-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z"
)


_FHIR_SERVER = re.compile(
    r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9._~!$&'()*+,;=:%-]+@)?"  # userinfo: 403 (allow-list)
    r"(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?\Z"
)


class _Tolerant(Schema):
    """Requests may carry extensions and unknown fields: keep them, never reject."""

    class Meta:
        unknown = INCLUDE


class _Strict(Schema):
    """What we send must be exactly the spec's shape."""

    class Meta:
        unknown = RAISE


def _no_empty(data: dict[str, Any]) -> None:
    """Spec 'Wire rules': optional fields without a value are omitted, never null or empty."""
    for key, value in data.items():
        if value is None or value == "" or value == [] or value == {}:
            raise ValidationError("must be omitted rather than empty", field_name=key)


class FhirAuthorizationSchema(_Tolerant):
    """Spec 'fhirAuthorization': an OAuth 2.0 bearer access token for fhirServer."""

    access_token = fields.String(required=True, validate=_NON_EMPTY)
    token_type = fields.String(required=True, validate=validate.Equal("Bearer"))
    expires_in = fields.Integer(required=True, strict=True)
    scope = fields.String(required=True)
    subject = fields.String(required=True)
    patient = fields.String()


class PatientViewContextSchema(_Tolerant):
    """Hook library 'patient-view' 2.0 context."""

    userId = fields.String(required=True, validate=_NON_EMPTY)
    patientId = fields.String(required=True, validate=_FHIR_ID)
    encounterId = fields.String(allow_none=True, validate=_FHIR_ID)


# What _is_bundle checks, said in the OpenAPI document (apispec copies field metadata).
_BUNDLE = {
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "entry": {"type": "array", "items": {}},
    },
}


class OrderSignContextSchema(PatientViewContextSchema):
    """Hook library 'order-sign' 1.1 context: draftOrders is a Bundle (type often missing)."""

    draftOrders = fields.Dict(required=True, metadata=_BUNDLE)

    @validates_schema
    def _is_bundle(self, data: dict[str, Any], **_: Any) -> None:
        bundle = data.get("draftOrders") or {}
        if bundle.get("resourceType") != "Bundle":
            raise ValidationError("must be a FHIR Bundle", field_name="draftOrders")
        entries = bundle.get("entry", [])
        if not isinstance(entries, list):
            raise ValidationError("entry must be a list", field_name="draftOrders.entry")


class OrderSelectContextSchema(OrderSignContextSchema):
    """Hook library 'order-select' 2.0 context: selections point into draftOrders."""

    # Selections naming no draftOrders entry are ignored, not refused: the drafts decide.
    selections = fields.List(fields.String(validate=_REFERENCE), required=True)


CONTEXT_SCHEMAS: dict[str, type[Schema]] = {
    "patient-view": PatientViewContextSchema,
    "order-select": OrderSelectContextSchema,
    "order-sign": OrderSignContextSchema,
}


class HookRequestSchema(_Tolerant):
    """Spec 'HTTP Request': the body POSTed to a service."""

    hook = fields.String(required=True, validate=_NON_EMPTY)
    hookInstance = fields.UUID(required=True)
    # One pattern, in the OpenAPI document too, says what is accepted ("" is not); whether
    # the service may fetch from it is the allow-list's answer (403), not the schema's.
    fhirServer = fields.String(
        allow_none=True, validate=[validate.Length(min=8, max=2048), validate.Regexp(_FHIR_SERVER)]
    )
    fhirAuthorization = fields.Nested(FhirAuthorizationSchema, allow_none=True)
    context = fields.Dict(required=True)
    prefetch = fields.Dict(
        keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True
    )
    extension = fields.Dict()

    @validates_schema
    def _server_with_token(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("fhirAuthorization") and not data.get("fhirServer"):
            raise ValidationError("required when fhirAuthorization is present", "fhirServer")


class CodingSchema(_Strict):
    """FHIR Coding as cards use it (spec 'Source' topic, 'Override Reason')."""

    system = fields.String(validate=_NON_EMPTY)
    code = fields.String(required=True, validate=_NON_EMPTY)
    display = fields.String(validate=_NON_EMPTY)


class OverrideReasonSchema(CodingSchema):
    """Spec 'Override Reason': a Coding a clinician picks; display is required to show it."""

    display = fields.String(required=True, validate=_NON_EMPTY)


class SourceSchema(_Strict):
    """Spec 'Source'."""

    label = fields.String(required=True, validate=_NON_EMPTY)
    url = fields.Url()
    icon = fields.Url()
    topic = fields.Nested(CodingSchema)


class ActionSchema(_Strict):
    """Spec 'Action': create/update carry a resource; delete carries resourceId only."""

    type = fields.String(required=True, validate=validate.OneOf(["create", "update", "delete"]))
    description = fields.String(required=True, validate=_NON_EMPTY)
    resource = fields.Dict()
    resourceId = fields.String(validate=_REFERENCE)

    @validates_schema
    def _shape(self, data: dict[str, Any], **_: Any) -> None:
        _no_empty(data)
        if data["type"] == "delete":
            if "resource" in data or "resourceId" not in data:
                raise ValidationError("delete needs resourceId and no resource", "resourceId")
        elif "resource" not in data or "resourceType" not in data["resource"]:
            raise ValidationError(f"{data['type']} needs a FHIR resource", "resource")


class SuggestionSchema(_Strict):
    """Spec 'Suggestion'."""

    label = fields.String(required=True, validate=_NON_EMPTY)
    uuid = fields.UUID()
    isRecommended = fields.Boolean()
    actions = fields.List(fields.Nested(ActionSchema), validate=_NON_EMPTY)


class LinkSchema(_Strict):
    """Spec 'Link': appContext only on smart links."""

    label = fields.String(required=True, validate=_NON_EMPTY)
    url = fields.Url(required=True)
    type = fields.String(required=True, validate=validate.OneOf(["absolute", "smart"]))
    appContext = fields.String()

    @validates_schema
    def _app_context(self, data: dict[str, Any], **_: Any) -> None:
        if "appContext" in data and data["type"] != "smart":
            raise ValidationError("only allowed on smart links", "appContext")


class CardSchema(_Strict):
    """Spec 'Card Attributes'."""

    uuid = fields.UUID(required=True)
    summary = fields.String(required=True, validate=validate.Length(min=1, max=SUMMARY_MAX))
    detail = fields.String(validate=_NON_EMPTY)
    indicator = fields.String(
        required=True, validate=validate.OneOf(["info", "warning", "critical"])
    )
    source = fields.Nested(SourceSchema, required=True)
    suggestions = fields.List(fields.Nested(SuggestionSchema), validate=_NON_EMPTY)
    selectionBehavior = fields.String(validate=validate.OneOf(["at-most-one", "any"]))
    overrideReasons = fields.List(fields.Nested(OverrideReasonSchema), validate=_NON_EMPTY)
    links = fields.List(fields.Nested(LinkSchema), validate=_NON_EMPTY)
    extension = fields.Dict(validate=_NON_EMPTY)

    @validates_schema
    def _rules(self, data: dict[str, Any], **_: Any) -> None:
        _no_empty(data)
        if data.get("suggestions") and "selectionBehavior" not in data:
            raise ValidationError("required when suggestions exist", "selectionBehavior")


class SystemActionSchema(ActionSchema):
    """Spec 'systemActions': actions the client applies without a card."""


class HookResponseSchema(_Strict):
    """Spec 'CDS Service Response'."""

    cards = fields.List(fields.Nested(CardSchema), required=True)
    systemActions = fields.List(fields.Nested(SystemActionSchema), validate=_NON_EMPTY)
    extension = fields.Dict(validate=_NON_EMPTY)


class ServiceSchema(_Strict):
    """Spec 'Discovery': one CDS Service."""

    hook = fields.String(required=True)
    id = fields.String(required=True)
    title = fields.String()
    description = fields.String(required=True)
    prefetch = fields.Dict(keys=fields.String(), values=fields.String())
    usageRequirements = fields.String()
    extension = fields.Dict(validate=_NON_EMPTY)


class DiscoverySchema(_Strict):
    """Spec 'Discovery Response'."""

    services = fields.List(fields.Nested(ServiceSchema), required=True)


class AcceptedSuggestionSchema(_Tolerant):
    """Spec 'Feedback': an accepted suggestion, by its uuid."""

    id = fields.UUID(required=True)


class FeedbackCodingSchema(_Tolerant):
    """A Coding as clients send it back: display may be missing."""

    system = fields.String()
    code = fields.String(required=True, validate=_NON_EMPTY)
    display = fields.String()


class OverrideReasonFeedbackSchema(_Tolerant):
    """Spec 'Overridden guidance': real clients send code/system only, no display."""

    reason = fields.Nested(FeedbackCodingSchema)
    userComment = fields.String()


class _Rfc3339(fields.String):
    """An RFC 3339 date-time with an offset, as the spec's outcomeTimestamp requires."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not _RFC3339.match(text):
            raise ValidationError("must be an RFC 3339 date-time with offset")
        return text


class FeedbackItemSchema(_Tolerant):
    """Spec 'Feedback': what happened to one card."""

    card = fields.UUID(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    acceptedSuggestions = fields.List(fields.Nested(AcceptedSuggestionSchema))
    overrideReason = fields.Nested(OverrideReasonFeedbackSchema)
    outcomeTimestamp = _Rfc3339(
        required=True,
        validate=validate.Regexp(
            _TIMESTAMP, error="must be an RFC 3339 date-time, years 1000-9998"
        ),
        metadata={"format": "date-time"},
    )

    @validates_schema
    def _outcome(self, data: dict[str, Any], **_: Any) -> None:
        if data["outcome"] == "accepted" and not data.get("acceptedSuggestions"):
            raise ValidationError("required when outcome is accepted", "acceptedSuggestions")
        if data["outcome"] == "overridden" and data.get("acceptedSuggestions"):
            raise ValidationError("not allowed when outcome is overridden", "acceptedSuggestions")


class FeedbackSchema(_Tolerant):
    """Spec 'Feedback' request body."""

    feedback = fields.List(fields.Nested(FeedbackItemSchema), required=True, validate=_NON_EMPTY)


class ErrorSchema(_Strict):
    """The one JSON error shape of this service (not part of CDS Hooks)."""

    error = fields.Dict(required=True)
