"""Public entry points: prefetch -> PatientState, draftOrders -> OrderContext (never raise)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from fhir_mappings import raw, shapes
from fhir_mappings.clinical import (
    SERVICE_REQUEST_EXCLUDED,
    allergy_exclusion,
    condition_exclusion,
    condition_hint,
    impossible_date,
    map_allergy,
    map_condition,
    map_patient,
    service_request_kinds,
)
from fhir_mappings.domain import (
    Allergy,
    Coding,
    Condition,
    Course,
    MappingIssue,
    Measurement,
    Medication,
    OrderContext,
    Patient,
    PatientState,
    Series,
)
from fhir_mappings.dosage import course_at, course_start, intended_course, map_course
from fhir_mappings.history import HISTORY_TYPES, history_exclusion, map_history, request_view
from fhir_mappings.lazy import LazyResource
from fhir_mappings.medications import (
    MedicationIndex,
    index_medications,
    map_medication_request,
    medication_request_exclusion,
)
from fhir_mappings.memo import (
    ContentMemo,
    WeightedMemo,
    content_digest,
    keyed_digest,
    prefetch_digest,
)
from fhir_mappings.observations import (
    is_relevant,
    is_relevant_shape,
    is_study_report,
    map_observation,
    map_study_report,
)
from fhir_mappings.terminology import Terminology, load_terminology
from fhir_mappings.validation import checked, decoded_checked, repair, validation_problem

Entry = tuple[str | None, Mapping[str, Any]]  # (Bundle fullUrl, resource, maybe lazy)
_MAX_DEPTH = 4


def _full_url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _flatten(value: Any, where: str, issues: list[MappingIssue], depth: int = 0) -> list[Entry]:
    """Resources of a resource, a Bundle (any type, or none), or a list of either.

    A lazy Bundle (fhir_mappings.lazy) gives its resources still lazy: decoded when mapped.
    """
    if value is None:
        return []
    if depth > _MAX_DEPTH:
        issues.append(MappingIssue(where, "Bundles nested too deeply; ignored"))
        return []
    if isinstance(value, list):
        return [e for v in value for e in _flatten(v, where, issues, depth + 1)]
    lazy_entries = value.entries() if isinstance(value, LazyResource) else None
    if lazy_entries is None and isinstance(value, LazyResource):
        value = value.load()  # not lazy, or a Bundle of odd shape: read it decoded
    if not isinstance(value, Mapping) or not isinstance(value.get("resourceType"), str):
        issues.append(MappingIssue(where, "not a FHIR resource; ignored"))
        return []
    if value["resourceType"] != "Bundle":
        return [(None, value)]
    if lazy_entries is None:
        entries = value.get("entry", [])
        lazy_entries = [
            (_full_url(e.get("fullUrl")), e.get("resource"))
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, dict)
        ]
    out: list[Entry] = []
    for entry_url, res in lazy_entries:
        if res is None:
            continue
        kind = res.resource_type if isinstance(res, LazyResource) else None
        if isinstance(kind, str) and kind != "Bundle":  # the common case, without recursing
            out.append((_full_url(entry_url), res))
            continue
        for full_url, r in _flatten(res, where, issues, depth + 1):
            out.append((full_url or _full_url(entry_url), r))
    return out


def _dedupe(entries: list[Entry]) -> list[Entry]:
    seen: set[tuple[str, str]] = set()
    out: list[Entry] = []
    for full_url, res in entries:
        rid = res.get("id")
        if isinstance(rid, str) and rid.strip():
            key = (str(res.get("resourceType")), rid)
            if key in seen:
                continue
            seen.add(key)
        out.append((full_url, res))
    return out


def _decoded(res: Mapping[str, Any]) -> dict[str, Any]:
    """A lazy resource decoded for mapping (freed after); a decoded one as it is."""
    return res.load() if isinstance(res, LazyResource) else res  # type: ignore[return-value]


def _ref(res: Mapping[str, Any]) -> str:
    rid = res.get("id")
    return f"{res.get('resourceType')}/{rid if isinstance(rid, str) and rid.strip() else '?'}"


# Observations, Conditions, AllergyIntolerances and MedicationRequests that name their drug
# map the same whatever the request (no references; only a medication's course depends on
# `now`): their outcome is remembered per content digest, since EHRs resend the same record
# on every chart open (issue 8). Frozen domain objects are safe to share.
_PURE_TYPES = frozenset({"Observation", "Condition", "AllergyIntolerance"})
OUTCOME_MEMO = ContentMemo(size=20_000)
# EHRs send the same prefetch on every chart open: a prefetch seen before (same content
# digest) skips decoding, flattening and per-resource digests (issue 8). Bounded by the
# resources its prefetches hold, as what it keeps alive grows with them.
PREFETCH_MEMO = WeightedMemo(size=20_000)


def forget_memos() -> None:
    """Forget every mapped prefetch and resource (a worker that has seen no record yet)."""
    PREFETCH_MEMO.clear()
    OUTCOME_MEMO.clear()


def condition_exclusion_safe(res: Mapping[str, Any]) -> str | None:
    """condition_exclusion on a resource that may be malformed (None when it cannot say)."""
    try:
        return condition_exclusion(dict(res))
    except Exception:  # malformed status elements: the Condition is reported, not excluded
        return None


def _names_its_drug(res: dict[str, Any]) -> bool:
    """A MedicationRequest that needs no Medication resource from elsewhere in the prefetch."""
    return (
        isinstance(res.get("medicationCodeableConcept"), dict)
        and "medicationReference" not in res
        and "medication" not in res
    )


class _Mapper:
    """Dispatches resources by resourceType; every resource is isolated by try/except."""

    def __init__(self, term: Terminology, now: datetime) -> None:
        self.term = term
        self.now = now
        self.issues: list[MappingIssue] = []
        self.measurements: list[Measurement] = []
        self.conditions: list[Condition] = []
        self.allergies: list[Allergy] = []
        self.medications: list[Medication] = []
        self.service_requests: list[Coding] = []
        self.sr_kinds: set[str] = set()
        self.patient: Patient | None = None
        self.patient_source: dict[str, Any] | None = None
        self.med_index: MedicationIndex = {}
        self.med_sources: list[dict[str, Any]] = []  # the request of each medication
        self._spare: _Mapper | None = None

    def valid(self, res: dict[str, Any]) -> dict[str, Any] | None:
        fixed = repair(res)
        checked = fixed
        if fixed.get("resourceType") == "MedicationRequest" and not (
            "medicationCodeableConcept" in fixed or "medicationReference" in fixed
        ):
            # Drafts may not name a drug yet: validate the rest, report the gap when mapping.
            checked = {**fixed, "medicationCodeableConcept": {"text": "unnamed"}}
        problem = validation_problem(checked)
        if problem:
            self.issues.append(MappingIssue(_ref(res), problem))
            return None
        return fixed

    def add(self, res: Mapping[str, Any], *, draft: bool = False) -> None:
        """Map one resource (decoded, or lazy: fhir_mappings.lazy) into this mapper's lists."""
        try:
            rtype = res.get("resourceType")
            if rtype == "Observation":
                self._add_observation(res)
                return
            raw = res.raw if isinstance(res, LazyResource) else None
            res = _decoded(res)
            if rtype in _PURE_TYPES or (rtype == "MedicationRequest" and _names_its_drug(res)):
                # Sent as bytes: their digest, without serialising the decoded resource again.
                self._add_remembered(res, draft, keyed_digest(raw) if raw is not None else None)
            else:
                self._dispatch(res, draft)
        except Exception as exc:  # a mapping bug must cost one resource, never the hook
            reason = f"not mapped: {type(exc).__name__}"
            if rtype == "Condition":
                self.issues.append(self._unusable_condition(res, reason))
            else:
                self.issues.append(MappingIssue(_ref(res), reason))

    def _unusable_condition(self, res: Mapping[str, Any], reason: str) -> MappingIssue:
        """Invalid is not absent: what an unusable Condition seems to be, for the report."""
        plain: Any = None
        if isinstance(res, LazyResource):
            try:  # invalid UTF-8: read what can be read, only to say what the record was
                plain = orjson.loads(bytes(res.raw).decode("utf-8", "replace"))
            except (orjson.JSONDecodeError, TypeError, ValueError):
                plain = None
        else:
            plain = res
        if isinstance(plain, dict) and condition_exclusion_safe(plain):
            return MappingIssue(_ref(res), reason)
        cats, unreadable = condition_hint(plain, self.term)
        if "invalid UTF-8" not in reason and isinstance(res, LazyResource) and plain is not None:
            reason = f"{reason} (the resource is not valid UTF-8 JSON)"
        return MappingIssue(_ref(res), reason, cats, unreadable)

    def _add_observation(self, res: Mapping[str, Any]) -> None:
        """A relevant Observation in its R4 shape, mapped once per content (memoised).

        A lazy one is decoded from its bytes straight into the shape (no dict built); an
        invalid one is decoded as JSON to tell whether the rules need it before reporting it.
        """
        obs: shapes.Observation | None = None
        if isinstance(res, LazyResource):
            obs, _ = decoded_checked(res.raw, shapes.Observation)
            if obs is not None and not is_relevant_shape(obs, self.term):
                return  # most of a chart
            digest = keyed_digest(res.raw) if obs is not None else None
            res = res.load() if obs is None else res
        if obs is None:
            plain = _decoded(res)
            if not is_relevant(plain, self.term):
                return
            digest = content_digest(plain)
        key = (id(self.term), digest, False)
        found, outcome = OUTCOME_MEMO.get(key) if digest else (False, None)
        if not found:
            if obs is None:
                obs, problem = checked(plain, shapes.Observation)
            if obs is None:
                outcome = ((), (), (), (), (MappingIssue(_ref(plain), str(problem)),))
            else:
                measurements, issues = map_observation(obs, self.term)
                outcome = (tuple(measurements), (), (), (), tuple(issues))
            if digest:
                OUTCOME_MEMO.put(key, outcome)
        assert outcome is not None
        self.measurements += outcome[0]
        self.issues += outcome[4]

    def _add_remembered(self, res: dict[str, Any], draft: bool, digest: bytes | None) -> None:
        """_dispatch for a resource whose outcome depends on its content alone (memoised).

        A MedicationRequest's course is the one part that depends on `now` (time since
        authoredOn): it is computed again on every call.
        """
        digest = digest or content_digest(res)  # the bytes' digest when it came as bytes
        key = (id(self.term), digest, draft)
        found, outcome = OUTCOME_MEMO.get(key) if digest else (False, None)
        if not found or outcome is None:
            scratch = self._scratch()
            scratch._dispatch(res, draft)
            outcome = (
                tuple(scratch.measurements),
                tuple(scratch.conditions),
                tuple(scratch.allergies),
                tuple(scratch.medications),
                tuple(scratch.issues),
            )
            if digest:
                OUTCOME_MEMO.put(key, outcome)
        elif any(m.course and m.course.elapsed_days is not None for m in outcome[3]):
            # Only a course with time elapsed (active, with authoredOn) was read from `now`.
            fixed = repair(res)
            medications = tuple(
                replace(m, course=map_course(fixed, m.dose, self.now)) for m in outcome[3]
            )
            outcome = (*outcome[:3], medications, outcome[4])
        measurements, conditions, allergies, medications, issues = outcome
        self.measurements += measurements
        self.conditions += conditions
        self.allergies += allergies
        self.medications += medications
        self.med_sources += [res] * len(medications)
        self.issues += issues

    def _scratch(self) -> _Mapper:
        """An empty mapper for one resource's outcome (one per mapper, emptied each time)."""
        scratch = self._spare
        if scratch is None:
            scratch = self._spare = _Mapper(self.term, self.now)
        scratch.measurements, scratch.conditions, scratch.allergies = [], [], []
        scratch.medications, scratch.issues = [], []
        return scratch

    def _dispatch(self, res: dict[str, Any], draft: bool) -> None:
        rtype = res.get("resourceType")
        if rtype == "MedicationRequest":
            ignored = medication_request_exclusion(res)
            if ignored:
                self.issues.append(MappingIssue(_ref(res), f"ignored: {ignored}"))
                return
            fixed = self.valid(res)
            if fixed is not None:
                med, problems = map_medication_request(
                    fixed, self.med_index, self.term, self.now, is_draft=draft
                )
                self.medications.append(med)
                self.med_sources.append(fixed)
                self.issues += problems
        elif rtype in HISTORY_TYPES:
            self._history(res)
        elif rtype == "Condition":
            self._condition(res)
        elif rtype == "AllergyIntolerance":
            self._allergy(res)
        elif rtype == "Patient" and self.patient is None:
            fixed = self.valid(res)
            if fixed is not None:
                self.patient = map_patient(fixed, self.now)
                self.patient_source = fixed
        elif rtype == "ServiceRequest":
            self._service_request(res)
        elif rtype == "DiagnosticReport":
            self._report(res)

    def _report(self, res: dict[str, Any]) -> None:
        """A study reported without an Observation (an ECG) still counts as done."""
        if not is_study_report(res, self.term):
            return
        report, problem = checked(repair(res), shapes.DiagnosticReport)
        if report is None:
            self.issues.append(MappingIssue(_ref(res), str(problem)))
            return
        found, problems = map_study_report(report, self.term)
        self.measurements += found
        self.issues += problems

    def _history(self, res: dict[str, Any]) -> None:
        """A MedicationAdministration or MedicationStatement: treatment given (issue 14)."""
        ignored = history_exclusion(res)
        if ignored:
            self.issues.append(MappingIssue(_ref(res), f"ignored: {ignored}"))
            return
        fixed = self.valid(res)
        if fixed is not None:
            med, problems = map_history(fixed, self.med_index, self.term, self.now)
            self.medications.append(med)
            self.med_sources.append(request_view(fixed))
            self.issues += problems

    def _condition(self, res: dict[str, Any]) -> None:
        excluded = condition_exclusion_safe(res)
        if excluded:
            return
        fixed = repair(res)
        problem = validation_problem(fixed) or impossible_date(fixed)
        if problem:
            self.issues.append(self._unusable_condition(res, str(problem)))
            return
        self.conditions.append(map_condition(fixed, self.term))

    def _allergy(self, res: dict[str, Any]) -> None:
        if allergy_exclusion(res):
            return
        fixed = self.valid(res)
        if fixed is not None:
            self.allergies.append(map_allergy(fixed, self.term))

    def _service_request(self, res: dict[str, Any]) -> None:
        if raw.string(res, "status") in SERVICE_REQUEST_EXCLUDED:
            return
        fixed = self.valid(res)
        if fixed is None:
            return
        codings = raw.codings(fixed.get("code"))
        text = raw.concept_text(fixed.get("code"))
        # A text-only request is kept as a Coding without system/code so it can be shown.
        self.service_requests += codings or ((Coding(None, None, text),) if text else ())
        self.sr_kinds |= service_request_kinds(codings, text, self.term)

    def series(self) -> dict[str, Series]:
        """One series per kind, plus one per analyte ("troponin_i_hs") as a subset of its kind."""
        by_kind: dict[str, list[Measurement]] = {}
        for m in self.measurements:
            by_kind.setdefault(m.kind, []).append(m)
            if m.analyte and m.analyte != m.kind:
                by_kind.setdefault(m.analyte, []).append(m)
        return {
            kind: Series(kind, tuple(sorted(items, key=lambda m: raw.aware(m.effective))))  # type: ignore[arg-type]
            for kind, items in by_kind.items()
        }


def _entries(prefetch: Mapping[str, Any], issues: list[MappingIssue]) -> list[Entry]:
    out: list[Entry] = []
    for key, value in prefetch.items():
        out += _flatten(value, f"prefetch:{key}", issues)
    return _dedupe(out)


@dataclass(frozen=True)
class _Snapshot:
    """A mapped prefetch, less the two parts read from the clock: age and courses."""

    series: dict[str, Series]
    conditions: tuple[Condition, ...]
    allergies: tuple[Allergy, ...]
    # A medication whose course runs on the clock comes with its intended course and start.
    medications: tuple[tuple[Medication, tuple[Course, datetime] | None], ...]
    service_requests: tuple[Coding, ...]
    service_request_kinds: frozenset[str]
    issues: tuple[MappingIssue, ...]
    patient_source: dict[str, Any] | None
    complete: bool = True  # False: mapping stopped on an unexpected error (not remembered)
    resources: int = 0  # how many resources the prefetch held


def _clock(med: Medication, source: dict[str, Any] | None) -> tuple[Course, datetime] | None:
    """What a remembered course needs to be brought up to `now` (None: not on the clock)."""
    if source is None or med.course is None or med.course.elapsed_days is None:
        return None
    fixed = repair(source)
    start = course_start(fixed)
    return (intended_course(fixed, med.dose), start) if start is not None else None


def _snapshot(
    mapper: _Mapper, series: dict[str, Series], complete: bool, resources: int = 0
) -> _Snapshot:
    sources: list[dict[str, Any] | None] = list(mapper.med_sources)
    if len(sources) != len(mapper.medications):  # only after an unexpected error
        sources = [None] * len(mapper.medications)
    return _Snapshot(
        series=series,
        conditions=tuple(mapper.conditions),
        allergies=tuple(mapper.allergies),
        medications=tuple(
            (m, _clock(m, src)) for m, src in zip(mapper.medications, sources, strict=True)
        ),
        service_requests=tuple(mapper.service_requests),
        service_request_kinds=frozenset(mapper.sr_kinds),
        issues=tuple(mapper.issues),
        patient_source=mapper.patient_source,
        complete=complete,
        resources=resources,
    )


def _map_prefetch(prefetch: Mapping[str, Any], term: Terminology, now: datetime) -> _Snapshot:
    mapper = _Mapper(term, now)
    try:
        entries = _entries(prefetch, mapper.issues)
        medications = [(u, r) for u, r in entries if r.get("resourceType") == "Medication"]
        mapper.med_index = index_medications([(u, _decoded(r)) for u, r in medications])
        for _, res in entries:
            mapper.add(res)
        return _snapshot(mapper, mapper.series(), complete=True, resources=len(entries))
    except Exception as exc:  # never raise into a hook
        mapper.issues.append(MappingIssue("prefetch", f"not mapped: {type(exc).__name__}"))
        return _snapshot(mapper, {}, complete=False)


def _remembered_prefetch(
    prefetch: Mapping[str, Any], term: Terminology, now: datetime
) -> _Snapshot:
    digest = prefetch_digest(prefetch) if PREFETCH_MEMO.size else None
    if digest is None:
        return _map_prefetch(prefetch, term, now)
    key = (id(term), digest)
    found, snapshot = PREFETCH_MEMO.get(key)
    if not found:
        snapshot = _map_prefetch(prefetch, term, now)
        if snapshot.complete:
            PREFETCH_MEMO.put(key, snapshot, weight=snapshot.resources)
    return snapshot


def map_patient_state(
    prefetch: Mapping[str, Any],
    *,
    now: datetime,
    unavailable: Mapping[str, str] | None = None,
) -> PatientState:
    """Everything the rules need from the prefetch; unusable inputs become MappingIssues."""
    term = load_terminology()
    now = raw.aware(now)
    if isinstance(prefetch, Mapping):
        snap = _remembered_prefetch(prefetch, term, now)
    else:
        issue = MappingIssue("prefetch", "prefetch is not an object; ignored")
        snap = _Snapshot({}, (), (), (), (), frozenset(), (issue,), None)
    reasons = (
        {str(k): str(v) for k, v in (unavailable or {}).items()}
        if isinstance(unavailable, Mapping)
        else {}
    )
    return PatientState(
        patient=map_patient(snap.patient_source, now) if snap.patient_source else None,
        series=snap.series,
        conditions=snap.conditions,
        allergies=snap.allergies,
        medications=tuple(
            replace(m, course=course_at(*clock, now)) if clock is not None else m
            for m, clock in snap.medications
        ),
        service_requests=snap.service_requests,
        issues=snap.issues,
        unavailable=tuple(reasons),
        service_request_kinds=snap.service_request_kinds,
        terminology_version=term.version,
        unavailable_reasons=reasons,
    )


def map_order_context(
    draft_orders: Any, selections: Sequence[str], *, now: datetime
) -> OrderContext:
    """order-select/order-sign draftOrders (a Bundle, often without `type`) as drafts."""
    term = load_terminology()
    mapper = _Mapper(term, raw.aware(now))
    try:
        entries = [
            (url, _decoded(res))
            for url, res in _dedupe(_flatten(draft_orders, "context.draftOrders", mapper.issues))
        ]
        mapper.med_index = index_medications(entries)
        for _, res in entries:
            if res.get("resourceType") == "MedicationRequest":
                mapper.add(res, draft=True)
    except Exception as exc:  # never raise into a hook
        mapper.issues.append(
            MappingIssue("context.draftOrders", f"not mapped: {type(exc).__name__}")
        )
    if isinstance(selections, str):
        selections = [selections]
    chosen = (
        frozenset(s for s in selections if isinstance(s, str))
        if isinstance(selections, list | tuple | set | frozenset)
        else frozenset()
    )
    drafts = sorted(mapper.medications, key=lambda m: m.reference not in chosen)
    return OrderContext(drafts=tuple(drafts), selections=chosen, issues=tuple(mapper.issues))
