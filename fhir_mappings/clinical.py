"""Condition, AllergyIntolerance, Patient and ServiceRequest mappings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_mappings import raw
from fhir_mappings.classify import classify
from fhir_mappings.domain import Allergy, Coding, Condition, Patient
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


def condition_exclusion(resource: dict[str, Any]) -> str | None:
    """Why a Condition does not count as current (None when it does)."""
    clinical = _status(resource, "clinicalStatus")
    verification = _status(resource, "verificationStatus")
    if verification in EXCLUDED_VERIFICATION:
        return f"verification status {verification}"
    if clinical is None:
        has_abatement = any(k.startswith("abatement") for k in resource)
        return "no clinical status and abated" if has_abatement else None
    if clinical not in ACTIVE_CLINICAL:
        return f"clinical status {clinical}"
    return None


_DATE_FIELDS = ("onsetDateTime", "recordedDate", "abatementDateTime")


def impossible_date(resource: dict[str, Any]) -> str | None:
    """A Condition date field that is no real date (e.g. the 30th of February), or None."""
    fields = [(f, resource.get(f)) for f in _DATE_FIELDS]
    for key in ("onsetPeriod", "abatementPeriod"):
        period = raw.obj(resource, key)
        fields += [(f"{key}.{end}", period.get(end)) for end in ("start", "end")]
    for name, value in fields:
        if isinstance(value, str) and value.strip() and raw.parse_datetime(value) is None:
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


def _severity(resource: dict[str, Any], term: Terminology) -> str | None:
    concept = resource.get("severity")
    for c in raw.codings(concept):
        if c.system and c.code and (c.system, c.code) in term.severity_codes:
            return term.severity_codes[(c.system, c.code)]
    text = normalize_text(raw.concept_text(concept) or "")
    return next((s for s in ("severe", "moderate", "mild") if s in text), None)


def map_condition(resource: dict[str, Any], term: Terminology) -> Condition:
    concept = resource.get("code")
    codings = raw.codings(concept)
    text = raw.concept_text(concept)
    cats, how = condition_categories(codings, text, term)
    return Condition(
        resource_id=raw.string(resource, "id"),
        codings=codings,
        text=text,
        categories=cats,
        clinical_status=_status(resource, "clinicalStatus"),
        severity=_severity(resource, term),
        onset=raw.parse_datetime(resource.get("onsetDateTime"))
        or raw.parse_datetime(raw.obj(resource, "onsetPeriod").get("start")),
        recorded=raw.parse_datetime(resource.get("recordedDate")),
        matched_by=how,
        verification_status=_status(resource, "verificationStatus"),
    )


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
