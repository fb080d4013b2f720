"""Readers of resources in their compiled R4 shapes (fhir_mappings.shapes).

A shape has its R4 types already, so these take them for granted; fhir_mappings.raw reads
decoded JSON of any shape instead.
"""

from __future__ import annotations

from typing import Any

from fhir_mappings import shapes
from fhir_mappings.domain import Coding


def text(value: Any) -> str | None:
    """A string element, None when absent, null or blank."""
    return value if isinstance(value, str) and value and not value.isspace() else None


def items(value: Any) -> list[Any]:
    """An array element, also when sent as one object (`list[X] | X` in the shapes)."""
    return value if type(value) is list else [] if value is None else [value]


def codings(concept: shapes.CodeableConcept | None) -> list[Any]:
    """A CodeableConcept's codings, or the bare Coding sent in its place (tolerated)."""
    if concept is None:
        return []
    if concept.coding:
        return concept.coding
    return [concept] if concept.code is not None or concept.system is not None else []


def concept_text(concept: shapes.CodeableConcept) -> str | None:
    """CodeableConcept.text, else the first coding display."""
    found = text(concept.text)
    if found:
        return found
    for c in codings(concept):
        if text(c.display):
            return c.display
    return None


def first_code(concept: shapes.CodeableConcept | None) -> str | None:
    """The first code of a concept (a Code is never blank): a status such as clinicalStatus."""
    for c in codings(concept):
        if c.code is not None:
            return c.code
    return None


def domain_codings(concept: shapes.CodeableConcept | None) -> tuple[Coding, ...]:
    """The concept's codings as domain Codings (blank members as None)."""
    return tuple(Coding(text(c.system), text(c.code), text(c.display)) for c in codings(concept))
