"""Pure domain types the guideline rules reason on; built from FHIR by fhir_mappings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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


@dataclass(frozen=True)
class Coding:
    """A FHIR Coding reduced to what matching needs."""

    system: str | None
    code: str | None
    display: str | None = None


@dataclass(frozen=True)
class MappingIssue:
    """An input that could not be used, and why (shown on cards and in the audit)."""

    resource: str  # "Observation/abc" or "prefetch:weight"
    reason: str


@dataclass(frozen=True)
class ReferenceRange:
    low: float | None
    high: float | None
    unit: str | None  # canonical UCUM unit, or None


@dataclass(frozen=True)
class Measurement:
    """One Observation value (or component) normalised to its quantity's canonical unit."""

    kind: str  # value-set key: "ck", "weight", "troponin_i", "bp_systolic", ...
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Allergy:
    """An AllergyIntolerance classified by the drug ingredients/classes it names."""

    resource_id: str | None
    codings: tuple[Coding, ...]
    text: str | None
    ingredients: frozenset[str]
    classes: frozenset[str]
    category: str | None = None  # allergy | intolerance
    clinical_status: str | None = None


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Course:
    """How long a medication is intended to run (or has run), and where that came from."""

    days: float | None
    source: str | None  # "expectedSupplyDuration", "boundsDuration", "since authoredOn", ...


@dataclass(frozen=True)
class Medication:
    """A MedicationRequest (active, stopped or draft) with its drug classified."""

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


@dataclass(frozen=True)
class Patient:
    resource_id: str | None
    birth_date: datetime | None
    age_years: int | None
    sex: str | None


@dataclass(frozen=True)
class PatientState:
    """Everything known about the patient at the time of the hook."""

    patient: Patient | None
    series: dict[str, Series] = field(default_factory=dict)  # keyed by measurement kind
    conditions: tuple[Condition, ...] = ()
    allergies: tuple[Allergy, ...] = ()
    medications: tuple[Medication, ...] = ()  # on record (active, stopped, completed)
    service_requests: tuple[Coding, ...] = ()  # codes of referrals/orders on record
    issues: tuple[MappingIssue, ...] = ()
    unavailable: tuple[str, ...] = ()  # prefetch keys that could not be had

    def has_category(self, category: str) -> bool:
        return any(category in c.categories for c in self.conditions)

    def active_medications(self) -> tuple[Medication, ...]:
        return tuple(m for m in self.medications if m.status in ("active", "on-hold"))


@dataclass(frozen=True)
class OrderContext:
    """order-select / order-sign: the draft orders, the selected ones first."""

    drafts: tuple[Medication, ...]
    selections: frozenset[str]  # "MedicationRequest/abc"
    issues: tuple[MappingIssue, ...] = ()

    def selected(self) -> tuple[Medication, ...]:
        if not self.selections:
            return self.drafts
        return tuple(d for d in self.drafts if d.reference in self.selections)
