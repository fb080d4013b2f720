"""Prefetch templates (spec 'Prefetch tokens'): filled from the hook's context.

The policy (what is used as sent, what is fetched) is cds_service.fhir.prefetch.
"""

from __future__ import annotations

import re
from typing import Any

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
