"""Defensive readers for raw FHIR JSON: every getter tolerates any input shape."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fhir_mappings import dates
from fhir_mappings.domain import Coding


def obj(value: Any, key: str) -> dict[str, Any]:
    """value[key] when it is a JSON object, else {}."""
    if isinstance(value, dict):
        got = value.get(key)
        if isinstance(got, dict):
            return got
    return {}


def objs(value: Any, key: str) -> list[dict[str, Any]]:
    """value[key] as a list of JSON objects; a lone object is accepted as a one-item list."""
    got = value.get(key) if isinstance(value, dict) else None
    if isinstance(got, dict):
        return [got]
    if isinstance(got, list):
        return [g for g in got if isinstance(g, dict)]
    return []


def string(value: Any, key: str) -> str | None:
    """value[key] when it is a string with a non-blank character (isspace() copies nothing)."""
    got = value.get(key) if isinstance(value, dict) else None
    return got if isinstance(got, str) and got and not got.isspace() else None


def number(value: Any, key: str) -> float | None:
    got = value.get(key) if isinstance(value, dict) else None
    if isinstance(got, bool) or not isinstance(got, int | float):
        return None
    f = float(got)
    return f if math.isfinite(f) else None


def codings(concept: Any) -> tuple[Coding, ...]:
    """The codings of a CodeableConcept (or of a bare Coding)."""
    if not isinstance(concept, dict):
        return ()
    raw = objs(concept, "coding")
    if not raw and ("code" in concept or "system" in concept):
        raw = [concept]
    return tuple(Coding(string(c, "system"), string(c, "code"), string(c, "display")) for c in raw)


def concept_text(concept: Any) -> str | None:
    """CodeableConcept.text, else the first coding display."""
    text = string(concept, "text")
    if text:
        return text
    for c in codings(concept):
        if c.display:
            return c.display
    return None


# The one FHIR date parser (fhir_mappings.dates): a value as its first instant, a Period's end
# as its last day.
parse_datetime = dates.parse_start
parse_end = dates.parse_end


def aware(dt: datetime) -> datetime:
    """Treat a naive datetime as UTC so comparisons never raise."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def code_of(concept: Any, system_suffix: str | None = None) -> str | None:
    """The first code of a CodeableConcept (optionally from a system ending in suffix)."""
    for c in codings(concept):
        if c.code and (system_suffix is None or (c.system or "").endswith(system_suffix)):
            return c.code
    return None
