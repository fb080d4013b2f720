"""Unit normalisation to one canonical UCUM unit per quantity (units.yaml)."""

from __future__ import annotations

import math
from typing import NamedTuple

from fhir_mappings.terminology import Quantity

UCUM = "http://unitsofmeasure.org"


class Normalised(NamedTuple):  # built for every value and range bound: a tuple is cheapest
    value: float | None
    unit: str | None
    problem: str | None = None


def normalise(quantity: Quantity, value: float, code: str | None, unit: str | None) -> Normalised:
    """Convert value to the quantity's canonical unit; unknown units are unusable, never assumed."""
    if quantity.keep_original_unit:
        if code or unit:
            return Normalised(value, code or unit)
        return Normalised(None, None, f"no unit given for a {quantity.name} value")
    for candidate in (code, unit):
        if not candidate:
            continue
        rule = quantity.units.get(candidate.strip()) or quantity.folded.get(
            candidate.strip().casefold()
        )
        if rule is not None:
            converted = value * rule.factor + rule.offset
            if not math.isfinite(converted):
                return Normalised(None, None, f"{quantity.name} value out of range")
            return Normalised(converted, quantity.canonical)
    if not code and not unit:
        return Normalised(None, None, f"no unit given for a {quantity.name} value")
    shown = code if code == unit or not unit else f"{code or ''} ({unit})"
    return Normalised(None, None, f"unknown unit {shown!r} for {quantity.name}")
