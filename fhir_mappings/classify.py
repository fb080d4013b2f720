"""Drug classification by RxNorm ingredient/product, ATC and ingredient name (CODES.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fhir_mappings.domain import Coding
from fhir_mappings.terminology import Terminology


@dataclass(frozen=True)
class Classification:
    ingredients: frozenset[str]
    classes: frozenset[str]
    matched_by: tuple[str, ...]


def classify(
    codings: Iterable[Coding], texts: Iterable[str | None], term: Terminology
) -> Classification:
    """Codes first; names in displays/text are matched too and recorded as such."""
    ingredients: set[str] = set()
    classes: set[str] = set()
    matched: list[str] = []

    def add(ingredient: str | None, cls: str | None, how: str) -> None:
        if ingredient:
            ingredients.add(ingredient)
            cls = cls or term.ingredient_class.get(ingredient)
        if cls:
            classes.add(cls)
        if how not in matched:
            matched.append(how)

    all_texts = [t for t in texts if t]
    for c in codings:
        if c.display:
            all_texts.append(c.display)
        if not c.code or not c.system:
            continue
        system, code = c.system.strip(), c.code.strip()
        if system == term.rxnorm:
            if code in term.rxnorm_ingredients:
                add(term.rxnorm_ingredients[code], None, f"rxnorm-ingredient:{code}")
            elif code in term.rxnorm_products:
                add(term.rxnorm_products[code], None, f"rxnorm-product:{code}")
        elif system == term.atc:
            atc = code.upper()
            if atc in term.atc_substances:
                add(term.atc_substances[atc], None, f"atc:{atc}")
            for prefix, cls in term.atc_class_prefixes:
                if atc.startswith(prefix):
                    add(None, cls, f"atc:{atc}")
                    break
    for text in all_texts:
        for ingredient, name in term.drug_names.find(text):
            if ingredient not in ingredients:
                add(ingredient, None, f"name:{name}")
    return Classification(frozenset(ingredients), frozenset(classes), tuple(matched))
