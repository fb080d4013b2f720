"""Prefetch (spec 'Providing FHIR Resources to a CDS Service'): filling templates, judging values.

The policy itself (what is used as sent, what is fetched) is cds_service.fhir.prefetch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from cds_service.hooks.registry import ServiceDefinition
from cds_service.hooks.types import HookRequest, ResolvedPrefetch

_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
# Spec 'Prefetch tokens': only root-level primitive context fields, plus the user tokens.
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class TemplateError(ValueError):
    """A template names a token the context cannot fill."""


def fill_template(template: str, context: dict[str, Any]) -> str:
    """Replace prefetch tokens with context values (spec 'Prefetch tokens')."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("context."):
            value = context.get(token.removeprefix("context."))
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                return str(value)
            raise TemplateError(f"context has no primitive {token}")
        if token in _USER_TOKENS:
            kind, _, ident = str(context.get("userId", "")).partition("/")
            if kind == _USER_TOKENS[token] and ident:
                return ident
        raise TemplateError(f"cannot fill {{{{{token}}}}}")

    return _TOKEN.sub(replace, template)


class PrefetchResolver(Protocol):
    def resolve(self, request: HookRequest, service: ServiceDefinition) -> ResolvedPrefetch: ...


def classify_value(value: Any) -> str | None:
    """Why a prefetched value is unusable (None when usable); `null` means 'no data'."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or "resourceType" not in value:
        return "not a FHIR resource"
    if value["resourceType"] == "OperationOutcome":
        return "the client's fetch failed (OperationOutcome)"
    return None
