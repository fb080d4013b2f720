"""The CDS Hooks 2.0.1 routes: parse, dispatch to the registry, serialize. Nothing more."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from marshmallow import ValidationError

from cds_service.errors import InvalidRequest
from cds_service.hooks.bodies import PayloadTooLarge, read_hook_json, read_json
from cds_service.hooks.calls import parse_hook_request, run_hook
from cds_service.hooks.resource_check import suggested_resource_problem
from cds_service.hooks.schemas import SUMMARY_MAX, CardSchema, FeedbackSchema
from cds_service.model.events import HookRecord, card_recommendation_id
from cds_service.model.registry import Registry
from cds_service.model.types import HookResult
from cds_service.security import check_hook_body
from fhir_mappings.memo import ContentMemo, keyed_digest

log = logging.getLogger(__name__)
bp = Blueprint("cds", __name__)
_CARD = CardSchema()
_FEEDBACK = FeedbackSchema()
UNAVAILABLE_KEY = "org.cds-myopathy.unavailable-inputs"


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


def _registry() -> Registry:
    registry: Registry = current_app.extensions["cds_registry"]
    return registry


def _body(reader: Any = read_json, **limits: Any) -> Any:
    body = reader(
        request,
        max_bytes=current_app.config["MAX_REQUEST_BYTES"],
        max_depth=current_app.config["MAX_JSON_DEPTH"],
        **limits,
    )
    check_hook_body(body, current_app.config)
    return body


@bp.get("/cds-services")
def discovery() -> Response:
    """Spec 'Discovery'."""
    return json_response(_registry().discovery())


# Cards differ from call to call mostly by their uuids: the schema's verdict is remembered for
# the card's content with each well-formed uuid blanked (a malformed one stays in the key).
_UUID_VALUE = re.compile(rb'"uuid":"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"')
CARD_VERDICTS = ContentMemo(size=4_096)


# Members whose values CardSchema checks for type and non-emptiness only (summary: also its
# length; an action's resource: also its resourceType). In the verdict's key any valid value
# stands for all the others, so a card that differs from one seen before only in its
# patient's values (summary, detail, provenance, suggestion texts and resources) is not
# validated again; an invalid value stays in the key as it is.
_ANY = "-"


def _text(value: Any, longest: int = 0) -> Any:
    valid = isinstance(value, str) and value and (not longest or len(value) <= longest)
    return _ANY if valid else value


def _mapping(value: Any, *required: str) -> Any:
    valid = isinstance(value, dict) and value and all(key in value for key in required)
    return dict.fromkeys(required or (_ANY,), 0) if valid else value


def _each(items: Any, shape: Any) -> Any:
    return [shape(item) for item in items] if isinstance(items, list) else items


def _action_shape(action: Any) -> Any:
    if not isinstance(action, dict):
        return action
    shape = dict(action)
    if "description" in shape:
        shape["description"] = _text(shape["description"])
    if "resource" in shape:
        shape["resource"] = _mapping(shape["resource"], "resourceType")
    return shape


def _suggestion_shape(suggestion: Any) -> Any:
    if not isinstance(suggestion, dict):
        return suggestion
    shape = dict(suggestion)
    if "label" in shape:
        shape["label"] = _text(shape["label"])
    if "actions" in shape:
        shape["actions"] = _each(shape["actions"], _action_shape)
    return shape


def verdict_shape(card: dict[str, Any]) -> dict[str, Any]:
    """The card with each valid patient-specific value replaced by one stand-in."""
    shape = dict(card)
    if "summary" in shape:
        shape["summary"] = _text(shape["summary"], longest=SUMMARY_MAX)
    if "detail" in shape:
        shape["detail"] = _text(shape["detail"])
    if "extension" in shape:
        shape["extension"] = _mapping(shape["extension"])
    if "suggestions" in shape:
        shape["suggestions"] = _each(shape["suggestions"], _suggestion_shape)
    return shape


def _card_errors(card: dict[str, Any]) -> Any:
    """CardSchema's errors for the card (spec 'CDS Service Response'), remembered by content."""
    try:
        key = keyed_digest(_UUID_VALUE.sub(b'"uuid":""', orjson.dumps(verdict_shape(card))))
    except (TypeError, orjson.JSONEncodeError):
        return _CARD.validate(card)
    found, errors = CARD_VERDICTS.get(key)
    if not found:
        errors = _CARD.validate(card)
        CARD_VERDICTS.put(key, errors)
    return errors


def _checked_suggestions(card: dict[str, Any], service_id: str) -> dict[str, Any]:
    """The card without any suggestion whose resource is not valid FHIR R4 (logged loudly)."""
    suggestions = card.get("suggestions")
    if not suggestions:
        return card
    kept = []
    for suggestion in suggestions:
        problems = [
            problem
            for action in suggestion.get("actions", [])
            if "resource" in action and (problem := suggested_resource_problem(action["resource"]))
        ]
        if problems:
            log.error(
                "service %s suggested a resource that is not valid R4 (%s): %s",
                service_id,
                card_recommendation_id(card),
                "; ".join(problems),
            )
        else:
            kept.append(suggestion)
    if len(kept) == len(suggestions):
        return card
    checked = {**card, "suggestions": kept}
    if not kept:
        del checked["suggestions"]
        checked.pop("selectionBehavior", None)
    return checked


def _checked_cards(cards: list[dict[str, Any]], service_id: str) -> list[dict[str, Any]]:
    """Drop (and log loudly) any card that would break the spec; EHRs reject such answers."""
    if not current_app.config["VALIDATE_RESPONSES"]:
        return cards
    valid = []
    for card in cards:
        errors = _card_errors(card)
        if errors:
            log.error("service %s built a card that breaks the spec: %s", service_id, errors)
        else:
            valid.append(_checked_suggestions(card, service_id))
    return valid


def _response_body(result: HookResult) -> dict[str, Any]:
    body: dict[str, Any] = {"cards": result.cards}
    extension = dict(result.extension)
    if result.unavailable:
        extension[UNAVAILABLE_KEY] = result.unavailable
    if extension:
        body["extension"] = extension
    return body


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    """Spec 'Calling a CDS Service'."""
    service = _registry().get(service_id)
    started, clock = datetime.now(UTC), time.perf_counter()
    body = _body(read_hook_json, max_entries=current_app.config["MAX_BUNDLE_ENTRIES"])
    hook_request = parse_hook_request(body, service)
    result = run_hook(service, hook_request, current_app.extensions["cds_prefetch"])
    result.cards = _checked_cards(result.cards, service.id)
    record = HookRecord(
        service_id=service.id,
        hook=hook_request.hook,
        hook_instance=hook_request.hook_instance,
        patient_id=hook_request.patient_id,
        started_at=started,
        duration_ms=(time.perf_counter() - clock) * 1000.0,
        cards=result.cards,
        knowledge_version=current_app.extensions["cds_engine"].version,
        unavailable=result.unavailable,
        silent_cards=result.silent_cards,
    )
    for listener in current_app.extensions["cds_hook_listeners"]:
        listener(record)
    capture = current_app.extensions.get("cds_capture")
    if capture is not None:
        capture(service.id, hook_request, result, started)
    return json_response(_response_body(result))


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """Spec 'Feedback': validated, then stored before 200 (the store raises 503 if it cannot)."""
    service = _registry().get(service_id)
    body = _body()
    items = body.get("feedback") if isinstance(body, dict) else None
    limit = int(current_app.config["MAX_FEEDBACK_ITEMS"])
    if isinstance(items, list) and len(items) > limit:
        raise PayloadTooLarge(
            f"feedback has more than {limit} items (CDS_MAX_FEEDBACK_ITEMS); send them in parts"
        )
    try:
        data = _FEEDBACK.load(body)
    except ValidationError as exc:
        raise InvalidRequest("invalid feedback", details=exc.normalized_messages()) from None
    stored = current_app.extensions["cds_store"].record_feedback(service.id, data["feedback"])
    return json_response(stored)
