"""MedicationRequest -> Medication: drug resolution, classification, dose and course.

A request is mapped from its compiled R4 shape (fhir_mappings.shapes.MedicationOrder):
decoded straight from a Bundle's bytes in one pass (`typed_requests`), or converted from JSON
already decoded once it is valid, as Observations are.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fhir_mappings import raw, shapes
from fhir_mappings.classify import Classification, classify
from fhir_mappings.domain import Coding, MappingIssue, Medication
from fhir_mappings.dosage import (
    Strength,
    course_at,
    intended_course,
    map_doses,
    strength_from_medication,
    strength_from_name,
)
from fhir_mappings.lazy import LazyResource, typed_entries
from fhir_mappings.readers import codings as _codings
from fhir_mappings.readers import concept_text as _concept_text
from fhir_mappings.readers import domain_codings
from fhir_mappings.readers import text as _text
from fhir_mappings.terminology import Terminology, remembered

MedicationIndex = dict[str, dict[str, Any]]
# A drug named by a CodeableConcept (typed) or by a Medication's code (decoded, unvalidated).
Concept = shapes.CodeableConcept | dict[str, Any] | None


def index_medications(resources: list[tuple[str | None, Any]]) -> MedicationIndex:
    """Medications by 'Medication/id', bare id and Bundle fullUrl, for medicationReference."""
    index: MedicationIndex = {}
    for full_url, res in resources:
        if not isinstance(res, dict) or res.get("resourceType") != "Medication":
            continue
        rid = raw.string(res, "id")
        if rid:
            index.setdefault(f"Medication/{rid}", res)
        if full_url:
            index.setdefault(full_url, res)
    return index


def medication_request_exclusion(request: Any) -> str | None:
    """Why a request is not a medication the patient gets or is being ordered (None if it is)."""
    if isinstance(request, shapes.MedicationOrder):
        do_not, status = request.doNotPerform, request.status
    else:
        do_not, status = request.get("doNotPerform"), request.get("status")
    if do_not is True:
        return "doNotPerform (an order NOT to give the drug)"
    if status == "entered-in-error":
        return "status entered-in-error"
    return None


def typed_requests(
    bundle: LazyResource,
) -> list[tuple[Any, shapes.MedicationRequestResource]] | None:
    """A search of MedicationRequests needing no repair, in one pass (lazy.typed_entries)."""
    return typed_entries(bundle, shapes.MedicationRequestResource)


def _objs(value: Any) -> list[dict[str, Any]]:
    """A lenient array of objects (a lone object is a one-item array)."""
    return raw.objs({"v": value}, "v")


def _resolve(
    request: shapes.MedicationOrder, index: MedicationIndex, ref: str
) -> tuple[Concept, dict[str, Any] | None, MappingIssue | None]:
    """(concept, Medication resource) named by the request, or an issue."""
    if request.medicationCodeableConcept is not None:
        return request.medicationCodeableConcept, None, None
    named = request.medicationReference
    reference = _text(named.reference) if named is not None else None
    if reference is None:
        return None, None, None
    if reference.startswith("#"):
        for contained in _objs(request.contained):
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


def _concept_parts(concept: Concept) -> tuple[tuple[Coding, ...], str | None, str | None]:
    """(codings, text, text or first display) of a typed or decoded concept."""
    if isinstance(concept, shapes.CodeableConcept):
        return domain_codings(concept), _text(concept.text), _concept_text(concept)
    return raw.codings(concept), raw.string(concept, "text"), raw.concept_text(concept)


def _strength(
    med_resource: dict[str, Any] | None,
    name: str | None,
    codings: tuple[Coding, ...],
    term: Terminology,
) -> Strength | None:
    """Product strength: Medication.ingredient, the drug's name, a coding display, the code."""
    found = (strength_from_medication(med_resource) if med_resource else None) or (
        strength_from_name(name)
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


def single_administration(request: shapes.MedicationOrder) -> bool:
    """The order is for one administration only: repeat.count 1, a "once"/"stat" timing
    code or text, or a single timing event without a repeat frequency."""
    for dosage in request.dosageInstruction or ():
        timing = dosage.timing
        if timing is None:
            continue
        repeat = timing.repeat
        if repeat is not None and repeat.count == 1 and (repeat.countMax or 1) <= 1:
            return True
        code = timing.code
        if code is not None:
            words = [_text(code.text)] + [_text(c.code) for c in _codings(code)]
            if any(w and w.strip().lower() in _ONCE for w in words):
                return True
        events = timing.event
        if events is not None and len(events) == 1 and not (repeat and repeat.frequency):
            return True
    return False


def _other_texts(request: shapes.MedicationOrder) -> list[str | None]:
    """What names the drug when its concept has neither codings nor text."""
    named = request.medicationReference
    display = _text(named.display) if named is not None else None
    if display:
        return [display]
    # Only a drug-less draft is read from its instructions: elsewhere they may name
    # other drugs ("not with diazepam") and must not classify the order.
    return [_text(d.text) for d in request.dosageInstruction or ()] or [None]


Drug = tuple[tuple[Coding, ...], str, str | None, Classification, Strength | None]


def _drug(
    concept: Concept,
    med_resource: dict[str, Any] | None,
    request: shapes.MedicationOrder,
    term: Terminology,
) -> Drug:
    """(codings, name, concept text, classification, strength) of the drug a request names."""
    codings, text, concept_text = _concept_parts(concept)
    texts: list[str | None] = [text]
    if not codings and not text:
        texts = _other_texts(request)
    name = concept_text or next((t for t in texts if t), None)
    # The Medication's ingredient codes classify too (a product code we do not list, say).
    ingredient_concepts = [
        raw.obj(i, "itemCodeableConcept") for i in raw.objs(med_resource, "ingredient")
    ]
    ingredient_codings = tuple(c for ic in ingredient_concepts for c in raw.codings(ic))
    texts += [raw.string(ic, "text") for ic in ingredient_concepts]
    cls = classify(codings + ingredient_codings, texts, term)
    strength = _strength(med_resource, concept_text, codings, term)
    return codings, name or "unnamed medication", concept_text, cls, strength


_DRUGS = 8192  # drugs remembered per terminology (bounded: names are free text)


def _known_drug(
    concept: Concept,
    med_resource: dict[str, Any] | None,
    request: shapes.MedicationOrder,
    term: Terminology,
) -> Drug:
    """_drug, remembered for a typed concept: charts name the same few drugs (pure)."""
    if med_resource is not None or not isinstance(concept, shapes.CodeableConcept):
        return _drug(concept, med_resource, request, term)
    coded = tuple((c.system, c.code, c.display) for c in _codings(concept))
    other = () if coded or _text(concept.text) else tuple(_other_texts(request))
    key = (concept.text, coded, other)
    return remembered(term.drug_memo, key, _DRUGS, lambda: _drug(concept, None, request, term))


def map_medication_request(
    request: shapes.MedicationOrder,
    index: MedicationIndex,
    term: Terminology,
    now: datetime,
    *,
    is_draft: bool = False,
) -> tuple[Medication, list[MappingIssue]]:
    """A (validated) MedicationRequest, in its shape, as a classified Medication."""
    rid = _text(request.id)
    ref = f"MedicationRequest/{rid}" if rid else None
    issues: list[MappingIssue] = []
    concept, med_resource, problem = _resolve(request, index, ref or "MedicationRequest/?")
    if problem:
        issues.append(problem)
    codings, name, concept_text, cls, strength = _known_drug(concept, med_resource, request, term)
    if not cls.ingredients and not cls.classes and not codings and name == "unnamed medication":
        issues.append(MappingIssue(ref or "MedicationRequest/?", "no medication named"))
    dose = map_doses(request, strength, concept_text, term)
    authored = raw.parse_datetime(request.authoredOn)
    status = _text(request.status)
    start = authored if status in ("active", "on-hold") else None
    reason = request.statusReason
    medication = Medication(
        resource_id=rid,
        reference=ref,
        name=name,
        codings=codings,
        ingredients=cls.ingredients,
        classes=cls.classes,
        matched_by=cls.matched_by,
        status=status,
        intent=_text(request.intent),
        authored_on=authored,
        dose=dose,
        course=course_at(intended_course(request, dose), start, now),
        status_reason=_concept_text(reason) if reason else None,
        is_draft=is_draft,
        period_start=authored,
        single_dose=single_administration(request),
    )
    return medication, issues
