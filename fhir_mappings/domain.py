"""Pure domain types the guideline rules reason on; built from FHIR by fhir_mappings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec

# Drug classes the guideline speaks of (terminology value-set keys).
GLUCOCORTICOID = "glucocorticoid"
METHOTREXATE = "methotrexate"
MMF = "mycophenolate"
IVIG = "ivig"
RITUXIMAB = "rituximab"
CYCLOPHOSPHAMIDE = "cyclophosphamide"
JAK_INHIBITOR = "jak_inhibitor"
MUSCLE_RELAXANT = "muscle_relaxant"
NSAID = "nsaid"
BENZODIAZEPINE = "benzodiazepine"
# Antispastics for spasticity of neurological origin (baclofen, tizanidine, dantrolene): not
# the guideline's "muscle relaxants" (see the decision in knowledge.yaml value_set_decisions).
ANTISPASTIC = "antispastic"


@dataclass(frozen=True, slots=True)
class Coding:
    """A FHIR Coding reduced to what matching needs."""

    system: str | None
    code: str | None
    display: str | None = None


@dataclass(frozen=True, slots=True)
class MappingIssue:
    """An input that could not be used, and why (shown on cards and in the audit)."""

    resource: str  # "Observation/abc" or "prefetch:weight"
    reason: str
    # A Condition that failed validation: the guideline categories its code seems to name
    # (read leniently, never used as valid), and whether its code could not be read at all.
    categories: frozenset[str] = frozenset()
    code_unreadable: bool = False
    # Its JSON could not be read at all (a lone surrogate): reported whatever its type.
    unreadable: bool = False


@dataclass(frozen=True, slots=True)
class ReferenceRange:
    low: float | None
    high: float | None
    unit: str | None  # canonical UCUM unit, or None


class Measurement(msgspec.Struct, frozen=True):
    """One Observation value (or component) normalised to its quantity's canonical unit.

    A frozen msgspec Struct, not a dataclass: one is built for every result of every chart,
    and a frozen dataclass of 15 fields costs ~2 us to build against ~0.2 us (a copy with
    changes: `msgspec.structs.replace`).
    """

    kind: str  # value-set key: "ck", "weight", "troponin", "bp_systolic", ...
    value: float | None  # canonical unit; None when only text/coded presence exists
    unit: str | None  # canonical UCUM unit
    effective: datetime | None
    resource_id: str | None = None
    comparator: str | None = None  # "<", "<=", ">", ">=" from valueQuantity or "<5"
    text: str | None = None  # valueString / valueCodeableConcept text
    reference_range: ReferenceRange | None = None
    interpretation: tuple[str, ...] = ()
    status: str | None = None
    original_value: float | None = None
    original_unit: str | None = None
    analyte: str | None = None  # sub-kind: "troponin_i", "troponin_t_hs", "crp_hs", ...
    code: str | None = None  # the matched code, e.g. LOINC "10839-9"
    unusable_reason: str | None = None  # why value is None although a value was sent


@dataclass(frozen=True, slots=True)
class Series:
    """All usable measurements of one kind, oldest first."""

    kind: str
    items: tuple[Measurement, ...] = ()

    @property
    def latest(self) -> Measurement | None:
        return self.items[-1] if self.items else None

    @property
    def previous(self) -> tuple[Measurement, ...]:
        return self.items[:-1]

    @property
    def peak(self) -> Measurement | None:
        valued = [m for m in self.items if m.value is not None]
        return max(valued, key=lambda m: m.value or 0.0) if valued else None

    @property
    def baseline(self) -> Measurement | None:
        return self.items[0] if self.items else None

    @property
    def valued(self) -> tuple[Measurement, ...]:
        """Items with a usable numeric value, oldest first."""
        return tuple(m for m in self.items if m.value is not None)

    @property
    def latest_valued(self) -> Measurement | None:
        valued = self.valued
        return valued[-1] if valued else None

    def time_since_latest(self, now: datetime) -> timedelta | None:
        """Time from the latest measurement to now."""
        latest = self.latest
        if latest is None or latest.effective is None:
            return None
        return _aware(now) - _aware(latest.effective)

    def within(self, now: datetime, days: float) -> Series:
        """The items of the last `days` days before now (look-back windows)."""
        start = _aware(now) - timedelta(days=days)
        kept = tuple(m for m in self.items if m.effective and _aware(m.effective) >= start)
        return Series(self.kind, kept)

    def change_from_peak(self) -> float | None:
        """Latest valued minus peak (<= 0), in the canonical unit."""
        latest, peak = self.latest_valued, self.peak
        if latest is None or peak is None or latest.value is None or peak.value is None:
            return None
        return latest.value - peak.value

    def fraction_fallen_from_peak(self) -> float | None:
        """(peak - latest) / peak: 0.5 means the value has halved since its peak."""
        change, peak = self.change_from_peak(), self.peak
        if change is None or peak is None or not peak.value:
            return None
        return -change / peak.value

    def change_from_baseline(self) -> float | None:
        """Latest valued minus the first valued measurement."""
        valued = self.valued
        if len(valued) < 2:
            return None
        return (valued[-1].value or 0.0) - (valued[0].value or 0.0)

    def is_rising(self) -> bool | None:
        """Latest valued above the one before it; None with fewer than two values."""
        valued = self.valued
        if len(valued) < 2:
            return None
        return (valued[-1].value or 0.0) > (valued[-2].value or 0.0)

    def above_upper_limit(self, default_upper_limit: float | None) -> bool | None:
        """Latest valued above its reference-range high, else above the named default."""
        latest = self.latest_valued
        if latest is None:
            return None
        return is_above_upper_limit(latest, default_upper_limit)


def upper_limit_of(m: Measurement, default_upper_limit: float | None) -> float | None:
    """The Observation's reference-range high, else the caller's named default."""
    rr = m.reference_range
    if rr is not None and rr.high is not None and rr.unit == m.unit:
        return rr.high
    return default_upper_limit


def is_above_upper_limit(m: Measurement, default_upper_limit: float | None) -> bool | None:
    """None when the value or the limit is unknown, or a comparator leaves it open."""
    limit = upper_limit_of(m, default_upper_limit)
    if m.value is None or limit is None:
        return None
    if m.comparator in ("<", "<="):
        return False if m.value <= limit else None
    if m.comparator in (">", ">="):
        return True if m.value >= limit else None
    return m.value > limit


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Condition:
    """An active (or recurring) Condition with the guideline categories it belongs to."""

    resource_id: str | None
    codings: tuple[Coding, ...]
    text: str | None
    categories: frozenset[str]  # value-set keys: "myopathy", "spasm", "dermatomyositis", ...
    clinical_status: str | None
    severity: str | None = None  # "severe" | "moderate" | "mild" | None
    onset: datetime | None = None
    recorded: datetime | None = None
    matched_by: tuple[str, ...] = ()  # "snomed:396230008", "icd10cm:M33.1", "name:myositis"
    verification_status: str | None = None


@dataclass(frozen=True, slots=True)
class Allergy:
    """An AllergyIntolerance classified by the drug ingredients/classes it names."""

    resource_id: str | None
    codings: tuple[Coding, ...]
    text: str | None
    ingredients: frozenset[str]
    classes: frozenset[str]
    category: str | None = None  # allergy | intolerance
    clinical_status: str | None = None
    matched_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dose:
    """A dosage normalised to mg; None fields are unknown, with the reason in `unknown`."""

    mg_per_administration: float | None
    administrations_per_day: float | None
    mg_per_day: float | None
    mg_per_week: float | None
    route: str | None  # "oral" | "subcutaneous" | "intravenous" | "intramuscular" | other
    as_needed: bool = False
    interval_days: float | None = None  # days between administrations (7 = weekly)
    unknown: tuple[str, ...] = ()  # why a field could not be known
    text: str | None = None  # dosageInstruction.text, as written
    dose_value: float | None = None  # the dose as ordered, in dose_unit
    dose_unit: str | None = None  # e.g. "mg", "TAB", "mL"
    non_mass_unit: bool = False  # dose ordered in tablets/mL/...: mg needs a strength
    max_mg_per_day: float | None = None  # from maxDosePerPeriod, when in mg
    # distinct days a week with a dose (1 = all doses of the week on one day); None: unknown
    days_per_week: float | None = None
    doses_per_dosing_day: float | None = None  # administrations on each day that has a dose
    count_per_day: float | None = None  # tablets/capsules a day, when a unit strength is known
    ml_per_day: float | None = None  # mL a day, when dosed in mL or a per-mL strength is known
    notes: tuple[str, ...] = ()  # how a value was derived (upper bound used, strength from name)


@dataclass(frozen=True, slots=True)
class Course:
    """How long a medication is intended to run (or has run), and where that came from."""

    days: float | None
    source: str | None  # "expectedSupplyDuration", "boundsDuration", "since authoredOn", ...
    elapsed_days: float | None = None  # active/on-hold: days since authoredOn (or start)


@dataclass(frozen=True, slots=True)
class Medication:
    """A MedicationRequest (active, stopped or draft), MedicationAdministration or
    MedicationStatement, with its drug classified."""

    resource_id: str | None  # the id inside the request, e.g. "abc"
    reference: str | None  # "MedicationRequest/abc"
    name: str  # best human name: display or text
    codings: tuple[Coding, ...]
    ingredients: frozenset[str]  # "lorazepam", "prednisone", ...
    classes: frozenset[str]  # see the class constants above
    matched_by: tuple[
        str, ...
    ]  # "rxnorm-ingredient:6470", "rxnorm-product:197901", "name:lorazepam"
    status: str | None
    intent: str | None
    authored_on: datetime | None
    dose: Dose | None
    course: Course | None
    status_reason: str | None = None
    is_draft: bool = False
    # Treatment history: which resource type said so, and when it was given.
    source: str = "MedicationRequest"  # | "MedicationAdministration" | "MedicationStatement"
    period_start: datetime | None = None  # first given / started (effective start)
    period_end: datetime | None = None  # last given / ended (effective end)
    single_dose: bool = False  # one administration only (timing count 1, "once", "stat")

    @property
    def last_date(self) -> datetime | None:
        """When the drug was last known given: end of the period, its start, else authoredOn."""
        return self.period_end or self.period_start or self.authored_on


@dataclass(frozen=True, slots=True)
class Patient:
    resource_id: str | None
    birth_date: datetime | None
    age_years: int | None
    sex: str | None


@dataclass(frozen=True, slots=True)
class PatientState:
    """Everything known about the patient at the time of the hook."""

    patient: Patient | None
    # keyed by measurement kind ("troponin"), and by analyte ("troponin_i_hs") for a subset
    series: dict[str, Series] = field(default_factory=dict)
    conditions: tuple[Condition, ...] = ()
    allergies: tuple[Allergy, ...] = ()
    medications: tuple[Medication, ...] = ()  # on record (active, stopped, completed)
    service_requests: tuple[Coding, ...] = ()  # codes of referrals/orders on record
    issues: tuple[MappingIssue, ...] = ()
    unavailable: tuple[str, ...] = ()  # prefetch keys that could not be had
    # kinds of the service requests on record: "physiotherapy_referral", "ecg", "ck", ...
    service_request_kinds: frozenset[str] = frozenset()
    terminology_version: str | None = None
    unavailable_reasons: dict[str, str] = field(default_factory=dict)

    def get_series(self, kind: str) -> Series:
        """The series of a measurement kind (empty when none)."""
        return self.series.get(kind) or Series(kind)

    def medications_in_class(self, drug_class: str) -> tuple[Medication, ...]:
        return tuple(m for m in self.medications if drug_class in m.classes)

    def has_category(self, category: str) -> bool:
        return any(category in c.categories for c in self.conditions)

    def active_medications(self) -> tuple[Medication, ...]:
        return tuple(m for m in self.medications if m.status in ("active", "on-hold"))


@dataclass(frozen=True, slots=True)
class OrderContext:
    """order-select / order-sign: the draft orders, the selected ones first."""

    drafts: tuple[Medication, ...]
    selections: frozenset[str]  # "MedicationRequest/abc"
    issues: tuple[MappingIssue, ...] = ()

    def selected(self) -> tuple[Medication, ...]:
        if not self.selections:
            return self.drafts
        return tuple(d for d in self.drafts if d.reference in self.selections)
