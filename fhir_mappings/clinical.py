"""Condition, AllergyIntolerance, Patient and ServiceRequest mappings."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fhir_mappings import raw, readers, shapes
from fhir_mappings.classify import classify
from fhir_mappings.domain import Allergy, Coding, Condition, Patient
from fhir_mappings.lazy import LazyResource, typed_entries
from fhir_mappings.terminology import Terminology, normalize_icd, normalize_text

ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_ALIAS = {
    "http://snomed.info/sct": "snomed",
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm",
    "http://hl7.org/fhir/sid/icd-10": "icd10",
}


def _status(resource: dict[str, Any], key: str) -> str | None:
    return raw.code_of(resource.get(key)) or raw.string(resource, key)


def _exclusion(
    clinical: str | None, verification: str | None, abated: Callable[[], bool]
) -> str | None:
    if verification in EXCLUDED_VERIFICATION:
        return f"verification status {verification}"
    if clinical is None:
        return "no clinical status and abated" if abated() else None
    if clinical not in ACTIVE_CLINICAL:
        return f"clinical status {clinical}"
    return None


def condition_exclusion(resource: dict[str, Any]) -> str | None:
    """Why a Condition does not count as current (None when it does)."""
    return _exclusion(
        _status(resource, "clinicalStatus"),
        _status(resource, "verificationStatus"),
        lambda: any(k.startswith("abatement") for k in resource),
    )


def typed_condition_exclusion(condition: shapes.ConditionResource) -> str | None:
    """condition_exclusion of a Condition read in one pass (typed_conditions)."""
    return _exclusion(
        readers.first_code(condition.clinicalStatus),
        readers.first_code(condition.verificationStatus),
        # Not asked in practice: one pass keeps Conditions with a clinical status only, as an
        # undeclared variant (STU3 abatementBoolean) is not in the shape.
        lambda: any(getattr(condition, name) is not None for name in _ABATEMENT),
    )


_ABATEMENT = tuple("abatement" + t for t in ("DateTime", "Age", "Period", "Range", "String"))
_DATE_FIELDS = ("onsetDateTime", "recordedDate", "abatementDateTime")


def impossible_date(condition: shapes.Condition) -> str | None:
    """A Condition date that is no real date (29 February of a common year), or None.

    The shape refuses the other impossible days; the one FHIR date parser refuses this one.
    """
    fields = [(name, getattr(condition, name)) for name in _DATE_FIELDS]
    for key in ("onsetPeriod", "abatementPeriod"):
        period = getattr(condition, key)
        if period is not None:
            fields += [(f"{key}.start", period.start), (f"{key}.end", period.end)]
    for name, value in fields:
        if value is not None and raw.parse_datetime(value) is None:
            return f"{name} is not a real date"
    return None


def condition_hint(resource: Any, term: Terminology) -> tuple[frozenset[str], bool]:
    """Categories an unusable Condition's code seems to name, read leniently; and whether
    its code could not be read at all. For reporting only: never used as a valid Condition."""
    if not isinstance(resource, dict):
        return frozenset(), True
    concept = resource.get("code")
    if isinstance(concept, str):
        concept = {"text": concept}
    if not isinstance(concept, dict):
        return frozenset(), True
    try:
        codings = raw.codings(concept)
        text = raw.concept_text(concept)
    except Exception:  # a lenient read of a broken resource must not fail the report
        return frozenset(), True
    if not codings and not text:
        return frozenset(), True
    cats, _ = condition_categories(codings, text, term)
    return cats, False


def condition_categories(
    codings: tuple[Coding, ...], text: str | None, term: Terminology
) -> tuple[frozenset[str], tuple[str, ...]]:
    """Guideline categories by system+code (ICD-10 by prefix), else by name."""
    cats: set[str] = set()
    how: list[str] = []
    for c in codings:
        if not c.system or not c.code:
            continue
        system = c.system.strip()
        icd = "icd-10" in system
        code = normalize_icd(c.code) if icd else c.code.strip()
        hit = set(term.condition_codes.get((system, code), frozenset()))
        if icd:
            for p_system, prefix, p_cats in term.condition_prefixes:
                if p_system == system and code.startswith(prefix):
                    hit |= p_cats
        if hit:
            cats |= hit
            how.append(f"{_ALIAS.get(system, system)}:{c.code.strip()}")
    if not cats:
        for t in [text, *(c.display for c in codings)]:
            for key, name in term.condition_names.find(t):
                cats |= set(key.split("@", 1)[0].split("|"))
                if f"name:{name}" not in how:
                    how.append(f"name:{name}")
    return frozenset(cats), tuple(how)


def _severity(concept: shapes.CodeableConcept | None, term: Terminology) -> str | None:
    codings = readers.domain_codings(concept)
    for c in codings:
        if c.system and c.code and (c.system, c.code) in term.severity_codes:
            return term.severity_codes[(c.system, c.code)]
    text = normalize_text((concept and readers.concept_text(concept)) or "")
    return next((s for s in ("severe", "moderate", "mild") if s in text), None)


def map_condition(condition: shapes.Condition, term: Terminology) -> Condition:
    """A valid Condition (in its R4 shape) as the rules read it."""
    concept = condition.code
    codings = readers.domain_codings(concept)
    text = readers.concept_text(concept) if concept is not None else None
    cats, how = condition_categories(codings, text, term)
    period = condition.onsetPeriod
    return Condition(
        resource_id=condition.id,  # an Id: never blank
        codings=codings,
        text=text,
        categories=cats,
        clinical_status=readers.first_code(condition.clinicalStatus),
        severity=_severity(condition.severity, term),
        onset=raw.parse_datetime(condition.onsetDateTime)
        or (raw.parse_datetime(period.start) if period is not None else None),
        recorded=raw.parse_datetime(condition.recordedDate),
        matched_by=how,
        verification_status=readers.first_code(condition.verificationStatus),
    )


_NULL = re.compile(rb"null")


def typed_conditions(
    bundle: LazyResource,
) -> list[tuple[Any, shapes.ConditionResource]] | None:
    """A Bundle's (fullUrl, Condition) pairs in one pass over its bytes, typed and checked.

    Only the common case: no JSON null anywhere (so that absent and null read the same), every
    Condition valid, with a clinical status code and real dates. None for anything else, read entry
    by entry, where each resource's problem is reported on its own, as before.
    """
    if _NULL.search(memoryview(bundle.raw)):
        return None
    found = typed_entries(bundle, shapes.ConditionResource)
    for _, condition in found or ():
        if readers.first_code(condition.clinicalStatus) is None or impossible_date(condition):
            return None
    return found


def allergy_exclusion(resource: dict[str, Any]) -> str | None:
    clinical = _status(resource, "clinicalStatus")
    verification = _status(resource, "verificationStatus")
    if verification in EXCLUDED_VERIFICATION:
        return f"verification status {verification}"
    if clinical is not None and clinical != "active":
        return f"clinical status {clinical}"
    return None


def map_allergy(resource: dict[str, Any], term: Terminology) -> Allergy:
    concept = resource.get("code")
    codings = raw.codings(concept)
    substances = [r.get("substance") for r in raw.objs(resource, "reaction")]
    all_codings = codings + tuple(c for s in substances for c in raw.codings(s))
    texts = [raw.string(concept, "text"), *(raw.concept_text(s) for s in substances)]
    cls = classify(all_codings, texts, term)
    return Allergy(
        resource_id=raw.string(resource, "id"),
        codings=codings,
        text=raw.concept_text(concept),
        ingredients=cls.ingredients,
        classes=cls.classes,
        category=raw.string(resource, "type"),
        clinical_status=_status(resource, "clinicalStatus"),
        matched_by=cls.matched_by,
    )


def map_patient(resource: dict[str, Any], now: datetime) -> Patient:
    birth = raw.parse_datetime(resource.get("birthDate"))
    age = None
    if birth is not None:
        now = raw.aware(now)
        age = now.year - birth.year - ((now.month, now.day) < (birth.month, birth.day))
        age = age if age >= 0 else None
    return Patient(
        resource_id=raw.string(resource, "id"),
        birth_date=birth,
        age_years=age,
        sex=raw.string(resource, "gender"),
    )


SERVICE_REQUEST_EXCLUDED = frozenset({"revoked", "entered-in-error"})


def service_request_kinds(
    codings: tuple[Coding, ...], text: str | None, term: Terminology
) -> frozenset[str]:
    """Referral/order kinds: service-request value sets, lab codes, then names."""
    kinds: set[str] = set()
    for c in codings:
        if c.system and c.code:
            key = (c.system.strip(), c.code.strip())
            if key in term.service_request_codes:
                kinds.add(term.service_request_codes[key])
            if key in term.observation_codes:
                kinds.add(term.observation_codes[key].kind)
    if not kinds:
        for t in [text, *(c.display for c in codings)]:
            kinds |= {k for k, _ in term.service_request_names.find(t)}
    return frozenset(kinds)
