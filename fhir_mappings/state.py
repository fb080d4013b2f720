"""Public entry points: prefetch -> PatientState, draftOrders -> OrderContext (never raise)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import msgspec
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
    typed_condition_exclusion,
    typed_conditions,
)
from fhir_mappings.domain import (
    Allergy,
    Coding,
    Condition,
    MappingIssue,
    Measurement,
    Medication,
    OrderContext,
    Patient,
    PatientState,
    Series,
)
from fhir_mappings.history import HISTORY_TYPES, history_exclusion, map_history
from fhir_mappings.lazy import LazyResource, UnreadableResource
from fhir_mappings.medications import (
    MedicationIndex,
    index_medications,
    map_medication_request,
    medication_request_exclusion,
    typed_requests,
)
from fhir_mappings.observations import (
    RangeCache,
    is_relevant,
    is_study_report,
    map_observation,
    map_study_report,
    relevant_match,
)
from fhir_mappings.shapes import ConditionResource, MedicationRequestResource, ObservationResource
from fhir_mappings.terminology import Terminology, load_terminology
from fhir_mappings.validation import checked, decoded_checked, repair, validation_problem

Typed = ObservationResource | MedicationRequestResource | ConditionResource

# (Bundle fullUrl, resource): decoded, lazy, or a resource of a search read in one pass (Typed)
Entry = tuple[str | None, Mapping[str, Any] | Typed]
_TYPED = (ObservationResource, MedicationRequestResource, ConditionResource)
_UNREADABLE = (msgspec.DecodeError, orjson.JSONDecodeError)
_MAX_DEPTH = 4


def _full_url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _flatten(value: Any, where: str, issues: list[MappingIssue], depth: int = 0) -> list[Entry]:
    """Resources of a resource, a Bundle (any type, or none), or a list of either.

    A lazy Bundle (fhir_mappings.lazy) gives its resources still lazy: decoded when mapped.
    """
    if value is None:
        return []
    if isinstance(value, UnreadableResource):  # never read as data: reported when mapped
        return [(None, value)]
    if depth > _MAX_DEPTH:
        issues.append(MappingIssue(where, "Bundles nested too deeply; ignored"))
        return []
    if isinstance(value, list):
        return [e for v in value for e in _flatten(v, where, issues, depth + 1)]
    if isinstance(value, LazyResource):
        typed = value.observations()  # a search of Observations: one pass, typed and checked
        if typed is not None:
            return [(_full_url(url), obs) for url, obs in typed]
        orders = typed_requests(value)  # a search of MedicationRequests: the same
        if orders is not None:
            return [(_full_url(url), order) for url, order in orders]
        conditions = typed_conditions(value)  # of Conditions: the same
        if conditions is not None:
            return [(_full_url(url), condition) for url, condition in conditions]
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
        rid: Any
        rtype: Any
        if isinstance(res, _TYPED):
            rid, rtype = res.id, res.resourceType  # an Id: never blank
        else:
            rid, rtype = res.get("id"), res.get("resourceType")
        if isinstance(rid, str) and rid.strip():
            key = (str(rtype), rid)
            if key in seen:
                continue
            seen.add(key)
        out.append((full_url, res))
    return out


def _decoded(res: Mapping[str, Any]) -> dict[str, Any]:
    """A lazy resource decoded for mapping (freed after); a decoded one as it is."""
    return res.load() if isinstance(res, LazyResource) else res  # type: ignore[return-value]


def _ref(res: Mapping[str, Any] | Typed) -> str:
    if isinstance(res, _TYPED):
        return f"{res.resourceType}/{res.id or '?'}"
    rid, rtype = res.get("id"), res.get("resourceType")
    if rtype is None and isinstance(res, UnreadableResource):
        rtype = "resource"  # its type is what could not be read
    return f"{rtype}/{rid if isinstance(rid, str) and rid.strip() else '?'}"


def condition_exclusion_safe(res: Mapping[str, Any]) -> str | None:
    """condition_exclusion on a resource that may be malformed (None when it cannot say)."""
    try:
        return condition_exclusion(dict(res))
    except Exception:  # malformed status elements: the Condition is reported, not excluded
        return None


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
        self.ranges: RangeCache = {}

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

    def add(
        self,
        res: Mapping[str, Any] | Typed,
        *,
        draft: bool = False,
    ) -> None:
        """Map one resource (decoded, lazy: fhir_mappings.lazy, or typed) into the lists."""
        rtype: Any = None
        try:
            if isinstance(res, ObservationResource):
                self._add_typed_observation(res)
                return
            if isinstance(res, MedicationRequestResource):
                self._add_request(res, res, draft)
                return
            if isinstance(res, ConditionResource):
                if not typed_condition_exclusion(res):
                    self.conditions.append(map_condition(res, self.term))
                return
            rtype = res.get("resourceType")
            if type(res) is UnreadableResource:
                self._unreadable(res, rtype)
            elif rtype == "Observation":
                self._add_observation(res)
            else:
                self._dispatch(_decoded(res), draft)
        except Exception as exc:  # a mapping bug must cost one resource, never the hook
            reason = f"not mapped: {type(exc).__name__}"
            if rtype == "Condition" and not isinstance(res, _TYPED):
                self.issues.append(self._unusable_condition(res, reason))
            elif isinstance(exc, _UNREADABLE) and isinstance(res, LazyResource):
                # Bytes that are not UTF-8: the record cannot be read, and the user is told.
                reason = "not readable: the resource is not valid UTF-8 JSON"
                self.issues.append(MappingIssue(_ref(res), reason, unreadable=True))
            else:
                self.issues.append(MappingIssue(_ref(res), reason))

    def _unreadable(self, res: UnreadableResource, rtype: Any) -> None:
        """Invalid is not absent: a resource that cannot be read is reported, whatever it is."""
        if rtype == "Condition":
            issue = self._unusable_condition(res, res.reason)
        else:
            issue = MappingIssue(_ref(res), res.reason)
        self.issues.append(replace(issue, unreadable=True))

    def _unusable_condition(self, res: Mapping[str, Any], reason: str) -> MappingIssue:
        """Invalid is not absent: what an unusable Condition seems to be, for the report."""
        plain: Any = None
        if isinstance(res, UnreadableResource):
            plain = res.lenient()
        elif isinstance(res, LazyResource):
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

    def _add_typed_observation(self, obs: shapes.Observation) -> None:
        """A valid Observation in its shape: mapped when a rule can use it."""
        top = relevant_match(obs, self.term)
        if top is not None:
            measurements, issues = map_observation(obs, self.term, top, self.ranges)
            self.measurements += measurements
            self.issues += issues

    def _add_observation(self, res: Mapping[str, Any]) -> None:
        """An Observation read on its own: checked against its R4 shape, then mapped.

        A lazy one is decoded from its bytes straight into the shape (no dict built); an
        invalid one is decoded as JSON to tell whether the rules need it before reporting it.
        """
        if isinstance(res, LazyResource):
            obs, _ = decoded_checked(res.raw, shapes.Observation)
            if obs is not None:
                self._add_typed_observation(obs)
                return
        plain = _decoded(res)
        if not is_relevant(plain, self.term):
            return
        obs, problem = checked(plain, shapes.Observation)
        if obs is None:
            self.issues.append(MappingIssue(_ref(plain), str(problem)))
            return
        measurements, issues = map_observation(obs, self.term, cache=self.ranges)
        self.measurements += measurements
        self.issues += issues

    def _dispatch(self, res: dict[str, Any], draft: bool) -> None:
        rtype = res.get("resourceType")
        if rtype == "MedicationRequest":
            self._add_request(res, None, draft)
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

    def _add_request(self, res: Any, order: shapes.MedicationRequest | None, draft: bool) -> None:
        """A MedicationRequest: in its shape already, or checked into it after repair."""
        ignored = medication_request_exclusion(order if order is not None else res)
        if ignored:
            self.issues.append(MappingIssue(_ref(res), f"ignored: {ignored}"))
            return
        if order is None:
            order = self._valid_request(res)
        if order is not None:
            med, problems = map_medication_request(
                order, self.med_index, self.term, self.now, is_draft=draft
            )
            self.medications.append(med)
            self.issues += problems

    def _valid_request(self, res: dict[str, Any]) -> shapes.MedicationRequest | None:
        """valid() for a MedicationRequest, keeping the shape it was checked into."""
        fixed = repair(res)
        unnamed = not ("medicationCodeableConcept" in fixed or "medicationReference" in fixed)
        if unnamed:  # drafts may not name a drug yet: see valid()
            fixed = {**fixed, "medicationCodeableConcept": {"text": "unnamed"}}
        order, problem = checked(fixed, shapes.MedicationRequest)
        if order is None:
            self.issues.append(MappingIssue(_ref(res), str(problem)))
            return None
        if unnamed:
            order.medicationCodeableConcept = None
        return order

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
        """A MedicationAdministration or MedicationStatement: treatment given."""
        ignored = history_exclusion(res)
        if ignored:
            self.issues.append(MappingIssue(_ref(res), f"ignored: {ignored}"))
            return
        fixed = self.valid(res)
        if fixed is not None:
            med, problems = map_history(fixed, self.med_index, self.term, self.now)
            self.medications.append(med)
            self.issues += problems

    def _condition(self, res: dict[str, Any]) -> None:
        excluded = condition_exclusion_safe(res)
        if excluded:
            return
        condition, problem = checked(repair(res), shapes.Condition)
        if condition is not None:
            problem = impossible_date(condition)
        if problem or condition is None:
            self.issues.append(self._unusable_condition(res, str(problem)))
            return
        self.conditions.append(map_condition(condition, self.term))

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
    """A mapped prefetch."""

    series: dict[str, Series]
    conditions: tuple[Condition, ...]
    allergies: tuple[Allergy, ...]
    medications: tuple[Medication, ...]
    service_requests: tuple[Coding, ...]
    service_request_kinds: frozenset[str]
    issues: tuple[MappingIssue, ...]
    patient_source: dict[str, Any] | None


def _snapshot(mapper: _Mapper, series: dict[str, Series]) -> _Snapshot:
    return _Snapshot(
        series=series,
        conditions=tuple(mapper.conditions),
        allergies=tuple(mapper.allergies),
        medications=tuple(mapper.medications),
        service_requests=tuple(mapper.service_requests),
        service_request_kinds=frozenset(mapper.sr_kinds),
        issues=tuple(mapper.issues),
        patient_source=mapper.patient_source,
    )


def _map_prefetch(prefetch: Mapping[str, Any], term: Terminology, now: datetime) -> _Snapshot:
    mapper = _Mapper(term, now)
    try:
        entries = _entries(prefetch, mapper.issues)
        mapper.med_index = index_medications(
            [
                (u, _decoded(r))
                for u, r in entries
                if not isinstance(r, (*_TYPED, UnreadableResource))
                and r.get("resourceType") == "Medication"
            ]
        )
        for _, res in entries:
            mapper.add(res)
        return _snapshot(mapper, mapper.series())
    except Exception as exc:  # never raise into a hook
        mapper.issues.append(MappingIssue("prefetch", f"not mapped: {type(exc).__name__}"))
        return _snapshot(mapper, {})


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
        snap = _map_prefetch(prefetch, term, now)
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
        medications=snap.medications,
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
            if not isinstance(res, _TYPED)  # never: draftOrders are decoded
        ]
        mapper.med_index = index_medications(
            [(u, r) for u, r in entries if not isinstance(r, UnreadableResource)]
        )
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
