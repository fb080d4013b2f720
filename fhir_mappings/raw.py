"""Defensive readers for raw FHIR JSON: every getter tolerates any input shape."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_mappings.domain import Coding

_DATE_RE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


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


def parse_datetime(value: Any) -> datetime | None:
    """FHIR date/dateTime/instant as an aware UTC datetime (partial dates at their start)."""
    if not isinstance(value, str):
        return None
    m = _DATE_RE.match(value.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    try:
        dt = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hh or 0),
            int(mm or 0),
            int(ss or 0),
            int(float(frac) * 1_000_000) if frac else 0,
            tzinfo=UTC,
        )
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            dt -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    except (ValueError, OverflowError):
        return None
    return dt


def aware(dt: datetime) -> datetime:
    """Treat a naive datetime as UTC so comparisons never raise."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def code_of(concept: Any, system_suffix: str | None = None) -> str | None:
    """The first code of a CodeableConcept (optionally from a system ending in suffix)."""
    for c in codings(concept):
        if c.code and (system_suffix is None or (c.system or "").endswith(system_suffix)):
            return c.code
    return None
