"""MedicationRequest -> Medication: drug resolution, classification, dose and course."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fhir_mappings import raw
from fhir_mappings.classify import classify
from fhir_mappings.domain import Coding, MappingIssue, Medication
from fhir_mappings.dosage import (
    Strength,
    map_course,
    map_doses,
    strength_from_medication,
    strength_from_name,
)
from fhir_mappings.terminology import Terminology

MedicationIndex = dict[str, dict[str, Any]]


def index_medications(resources: list[tuple[str | None, dict[str, Any]]]) -> MedicationIndex:
    """Medications by 'Medication/id', bare id and Bundle fullUrl, for medicationReference."""
    index: MedicationIndex = {}
    for full_url, res in resources:
        if res.get("resourceType") != "Medication":
            continue
        rid = raw.string(res, "id")
        if rid:
            index.setdefault(f"Medication/{rid}", res)
        if full_url:
            index.setdefault(full_url, res)
    return index


def medication_request_exclusion(request: dict[str, Any]) -> str | None:
    """Why a request is not a medication the patient gets or is being ordered (None if it is)."""
    if request.get("doNotPerform") is True:
        return "doNotPerform (an order NOT to give the drug)"
    if request.get("status") == "entered-in-error":
        return "status entered-in-error"
    return None


def _resolve(
    request: dict[str, Any], index: MedicationIndex, ref: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, MappingIssue | None]:
    """(concept, Medication resource) named by the request, or an issue."""
    concept = request.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept, None, None
    reference = raw.string(raw.obj(request, "medicationReference"), "reference")
    if reference is None:
        return None, None, None
    if reference.startswith("#"):
        for contained in raw.objs(request, "contained"):
            if (
                contained.get("resourceType") == "Medication"
                and contained.get("id") == reference[1:]
            ):
                return raw.obj(contained, "code"), contained, None
    else:
        plain = reference.split("/_history/", 1)[0]  # a versioned reference names the same drug
        med = index.get(plain) or index.get("Medication/" + plain.rsplit("/", 1)[-1])
        if med is not None:
            return raw.obj(med, "code"), med, None
    return None, None, MappingIssue(ref, f"medicationReference {reference!r} not found")


def _strength(
    concept: dict[str, Any] | None,
    med_resource: dict[str, Any] | None,
    codings: tuple[Coding, ...],
    term: Terminology,
) -> Strength | None:
    """Product strength: Medication.ingredient, the drug's name, a coding display, the code."""
    found = (strength_from_medication(med_resource) if med_resource else None) or (
        strength_from_name(raw.concept_text(concept))
    )
    for c in codings:
        if found is not None:
            break
        found = strength_from_name(c.display)
        known = term.product_displays.get(c.code or "") if c.system == term.rxnorm else None
        if found is None and known:
            named = strength_from_name(known)
            found = replace(named, source=f"RxNorm product {c.code}") if named else None
    return found


# Timing words and codes that mean a single administration ("once", "stat", "now").
_ONCE = frozenset({"once", "stat", "now", "one time", "single dose", "x1", "1 time"})


def single_administration(request: dict[str, Any]) -> bool:
    """The order is for one administration only: repeat.count 1, a "once"/"stat" timing
    code or text, or a single timing event without a repeat frequency."""
    for dosage in raw.objs(request, "dosageInstruction"):
        timing = raw.obj(dosage, "timing")
        repeat = raw.obj(timing, "repeat")
        if raw.number(repeat, "count") == 1 and (raw.number(repeat, "countMax") or 1) <= 1:
            return True
        code = raw.obj(timing, "code")
        words = [raw.string(code, "text")] + [c.code for c in raw.codings(code)]
        if any(w and w.strip().lower() in _ONCE for w in words):
            return True
        events = timing.get("event") if isinstance(timing, dict) else None
        if isinstance(events, list) and len(events) == 1 and not raw.number(repeat, "frequency"):
            return True
    return False


def map_medication_request(
    request: dict[str, Any],
    index: MedicationIndex,
    term: Terminology,
    now: datetime,
    *,
    is_draft: bool = False,
) -> tuple[Medication, list[MappingIssue]]:
    """A (validated, repaired) MedicationRequest as a classified Medication."""
    rid = raw.string(request, "id")
    ref = f"MedicationRequest/{rid}" if rid else None
    issues: list[MappingIssue] = []
    concept, med_resource, problem = _resolve(request, index, ref or "MedicationRequest/?")
    if problem:
        issues.append(problem)
    codings = raw.codings(concept)
    texts: list[str | None] = [raw.string(concept, "text")]
    if not codings and not texts[0]:
        texts = [raw.string(raw.obj(request, "medicationReference"), "display")]
    if not codings and not texts[0]:
        # Only a drug-less draft is read from its instructions: elsewhere they may name
        # other drugs ("not with diazepam") and must not classify the order.
        texts = [raw.string(d, "text") for d in raw.objs(request, "dosageInstruction")]
    name = raw.concept_text(concept) or next((t for t in texts if t), None) or "unnamed medication"
    # The Medication's ingredient codes classify too (a product code we do not list, say).
    ingredient_concepts = [
        raw.obj(i, "itemCodeableConcept") for i in raw.objs(med_resource, "ingredient")
    ]
    ingredient_codings = tuple(c for ic in ingredient_concepts for c in raw.codings(ic))
    texts += [raw.string(ic, "text") for ic in ingredient_concepts]
    cls = classify(codings + ingredient_codings, texts, term)
    if not cls.ingredients and not cls.classes and not codings and name == "unnamed medication":
        issues.append(MappingIssue(ref or "MedicationRequest/?", "no medication named"))
    strength = _strength(concept, med_resource, codings, term)
    dose = map_doses(request, strength, raw.concept_text(concept), term)
    reason = raw.obj(request, "statusReason")
    medication = Medication(
        resource_id=rid,
        reference=ref,
        name=name,
        codings=codings,
        ingredients=cls.ingredients,
        classes=cls.classes,
        matched_by=cls.matched_by,
        status=raw.string(request, "status"),
        intent=raw.string(request, "intent"),
        authored_on=raw.parse_datetime(request.get("authoredOn")),
        dose=dose,
        course=map_course(request, dose, now),
        status_reason=raw.concept_text(reason) if reason else None,
        is_draft=is_draft,
        period_start=raw.parse_datetime(request.get("authoredOn")),
        single_dose=single_administration(request),
    )
    return medication, issues
