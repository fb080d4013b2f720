"""R4 shapes of the elements the mapping reads, as msgspec Structs (compiled validation).

Each Struct declares, with the R4 datatype rules (primitive patterns, value sets of required
bindings, cardinality, required elements, one value per choice element), the elements that
`fhir_mappings` reads; elements it never reads are ignored. `msgspec.convert` checks a parsed
resource against its shape in C at a few microseconds, where building the fhir.resources
R4B model costs 0.1-0.5 ms. tests/test_shapes.py holds these shapes to the R4B
models: on every fixture resource and on mutations of every declared element, both agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from fhir_mappings import dates

T = TypeVar("T")

# R4 primitive types (http://hl7.org/fhir/R4/datatypes.html#primitive), as fhir_core checks them.
# string: R4's [ \r\n\t\S]+ refuses only "" and strings of other whitespace (U+00A0 ...);
# a length check is C-fast where a pattern costs ~0.2 us a string.
String = Annotated[str, Meta(min_length=1)]
_CODE = re.compile(r"^[^\s]+(\s[^\s]+)*\Z")
CodeItem = Annotated[str, Meta(pattern=_CODE.pattern)]  # a code in an array (rare)


class _Checked(str):
    """A string checked against an R4 primitive pattern by decode_hook (always `X | None`).

    A Meta pattern costs msgspec one `re` call per string; these are checked for less (see
    each), with errors that read as msgspec's own for `str | None`.
    """

    __slots__ = ()


class Code(_Checked):
    """R4 code: the same codes recur across a chart, so each distinct one is checked once."""

    __slots__ = ()


class DateTime(_Checked):
    """R4 dateTime: the common full forms pass dates.plainly_valid, the others the regex."""

    __slots__ = ()


class Instant(_Checked):
    """R4 instant: as DateTime, always with a time and a zone."""

    __slots__ = ()


_CHECKED: dict[str, Code] = {}
_CHECKED_MAX = 16_384  # distinct codes remembered per process (cleared when full)
_CHECKED_LONGEST = 64  # real codes are short (LOINC, SNOMED, UCUM): a long one is not kept
_JSON_TYPES = {bool: "bool", int: "int", float: "float", list: "array", dict: "object"}


def _code(value: str) -> Code:
    checked = _CHECKED.get(value)
    if checked is None:
        if _CODE.search(value) is None:
            raise ValueError(_NOT_MATCHING[Code])
        checked = Code(value)
        if len(value) <= _CHECKED_LONGEST:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED[value] = checked
    return checked


def _moment(kind: type[DateTime] | type[Instant]) -> Callable[[str], _Checked]:
    """The reader of a dateTime or an instant: the plain full forms at once, else R4's regex."""
    date_only, pattern, refused = kind is DateTime, PATTERNS[kind], _NOT_MATCHING[kind]

    def read(value: str) -> _Checked:
        if dates.plainly_valid(value, date_only=date_only) or pattern.search(value):
            return kind(value)
        raise ValueError(refused)

    return read


def decode_hook(kind: type[Any], value: Any) -> Any:
    """msgspec's dec_hook for the shapes: a checked string (Code, DateTime, Instant)."""
    if kind is Code and type(value) is str:
        return _CHECKED.get(value) or _code(value)  # most calls: a code already checked
    # A shape type no reader checks is a bug, not bad input: the KeyError is raised as it is
    # (msgspec turns only TypeError and ValueError into a refused resource).
    read = _READERS[kind]
    if type(value) is str:
        return read(value)
    if isinstance(value, str):  # already checked as this type, or another string to check
        return value if type(value) is kind else read(str(value))
    found = _JSON_TYPES.get(type(value), type(value).__name__)
    raise TypeError(f"Expected `str | null`, got `{found}`")


def convert(value: Any, shape: type[T], *, strict: bool = True) -> T:
    """msgspec.convert into a shape (with decode_hook)."""
    return msgspec.convert(value, shape, strict=strict, dec_hook=decode_hook)


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder(shape: Any) -> msgspec.json.Decoder[Any]:
    """The JSON decoder straight into a shape (with decode_hook), built once per shape."""
    found = _DECODERS.get(shape)
    if found is None:
        found = _DECODERS[shape] = msgspec.json.Decoder(shape, dec_hook=decode_hook)
    return found


Id = Annotated[str, Meta(pattern=r"^[A-Za-z0-9\-.]{1,64}\Z")]
Uri = str  # R4's \S* as fhir_core searches it (unanchored): every string matches
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
# A real calendar day: no 30 February or 31 April (R4: dates SHALL be valid dates; R4B refuses
# them). 29 February is accepted in every year (the mappings' date parser rejects it later).
_DAY = (
    r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    r"|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|02-(0[1-9]|[12][0-9]))"
)
_MONTH_DAY = rf"(-(0[1-9]|1[0-2])|-{_DAY})?"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|[+\-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
Date = Annotated[str, Meta(pattern=rf"^{_YEAR}{_MONTH_DAY}\Z")]
PATTERNS: dict[type[_Checked], re.Pattern[str]] = {
    Code: _CODE,
    DateTime: re.compile(rf"^{_YEAR}(-(0[1-9]|1[0-2])|-{_DAY}({_TIME}{_ZONE})?)?\Z"),
    Instant: re.compile(rf"^{_YEAR}-{_DAY}{_TIME}{_ZONE}\Z"),
}
_NOT_MATCHING = {k: f"Expected `str` matching regex {p.pattern!r}" for k, p in PATTERNS.items()}
_READERS: dict[type[Any], Callable[[str], _Checked]] = {
    Code: _code,
    DateTime: _moment(DateTime),
    Instant: _moment(Instant),
}
DateTimeItem = Annotated[str, Meta(pattern=PATTERNS[DateTime].pattern)]  # in an array
Time = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?\Z")]
Decimal = float  # a JSON number: msgspec refuses strings and booleans here
Integer = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
PositiveInt = Annotated[int, Meta(ge=1, le=2**31 - 1)]
UnsignedInt = Annotated[int, Meta(ge=0, le=2**31 - 1)]
UnitsOfTime = Literal["s", "min", "h", "d", "wk", "mo", "a"]


class _Element(Struct, forbid_unknown_fields=False, kw_only=True, gc=False):
    """Unknown elements (extensions, ids, elements the mapping never reads) are ignored.

    gc=False: decoded JSON is a tree (no reference cycles), so the collector need not track
    the thousands of elements a large Bundle decodes into at once.
    """


VALUES = tuple(  # value[x] of an Observation or component
    "value" + t
    for t in (
        *("Quantity", "CodeableConcept", "String", "Ratio", "Integer", "Boolean"),
        *("Range", "SampledData", "Time", "DateTime", "Period"),
    )
)


def _one_of(struct: Any, *names: str) -> None:
    """R4 choice elements ([x]) carry one value at most."""
    if sum(getattr(struct, n) is not None for n in names) > 1:
        raise ValueError(f"only one of {', '.join(names)} may be present")


def _one_value(v: Any) -> None:
    """value[x] once at most (unrolled: it runs for every Observation and component)."""
    present = (
        v.valueQuantity,
        v.valueCodeableConcept,
        v.valueString,
        v.valueRatio,
        v.valueInteger,
        v.valueBoolean,
        v.valueRange,
        v.valueSampledData,
        v.valueTime,
        v.valueDateTime,
        v.valuePeriod,
    )
    if len(present) - present.count(None) > 1:
        _one_of(v, *VALUES)  # raises, naming them


class Coding(_Element, kw_only=True):
    system: Uri | None = None
    version: String | None = None
    code: Code | None = None
    display: String | None = None
    userSelected: bool | None = None


class CodeableConcept(_Element, kw_only=True):
    coding: list[Coding] | None = None
    text: String | None = None
    # Tolerated: a bare Coding sent where a CodeableConcept belongs (read as its one coding).
    system: Uri | None = None
    code: Code | None = None
    display: String | None = None


class Quantity(_Element, kw_only=True):
    value: Decimal | None = None
    comparator: Literal["<", "<=", ">=", ">"] | None = None
    unit: String | None = None
    system: Uri | None = None
    code: Code | None = None


class Range(_Element, kw_only=True):
    low: Quantity | None = None
    high: Quantity | None = None


class Ratio(_Element, kw_only=True):
    numerator: Quantity | None = None
    denominator: Quantity | None = None


class Period(_Element, kw_only=True):
    start: DateTime | None = None
    end: DateTime | None = None


class Reference(_Element, kw_only=True):
    reference: String | None = None
    type: Uri | None = None
    display: String | None = None


class _Valued(_Element, kw_only=True):
    """value[x] (one at most), dataAbsentReason, interpretation and referenceRange.

    Arrays real clients send as one object are read as one-item arrays (`list[X] | X`).
    """

    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: String | None = None
    valueRatio: Ratio | None = None
    valueInteger: Integer | None = None
    valueBoolean: bool | None = None
    valueRange: Range | None = None
    valueSampledData: dict[str, Any] | None = None
    valueTime: Time | None = None
    valueDateTime: DateTime | None = None
    valuePeriod: Period | None = None
    dataAbsentReason: CodeableConcept | None = None
    interpretation: list[CodeableConcept] | CodeableConcept | None = None
    referenceRange: list[ReferenceRange] | ReferenceRange | None = None

    def __post_init__(self) -> None:
        _one_value(self)


class ReferenceRange(_Element, kw_only=True):
    low: Quantity | None = None
    high: Quantity | None = None
    type: CodeableConcept | None = None
    appliesTo: list[CodeableConcept] | None = None
    age: Range | None = None
    text: String | None = None


class ObservationComponent(_Valued, kw_only=True):
    code: CodeableConcept  # 1..1


class Observation(_Valued, kw_only=True):
    status: Literal[
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    ]
    code: CodeableConcept
    id: Id | None = None
    effectiveDateTime: DateTime | None = None
    effectiveInstant: Instant | None = None
    effectivePeriod: Period | None = None
    effectiveTiming: dict[str, Any] | None = None
    issued: Instant | None = None
    component: list[ObservationComponent] | ObservationComponent | None = None

    def __post_init__(self) -> None:
        _one_value(self)
        effective = (
            self.effectiveDateTime,
            self.effectiveInstant,
            self.effectivePeriod,
            self.effectiveTiming,
        )
        if effective.count(None) < 3:
            _one_of(
                self, "effectiveDateTime", "effectiveInstant", "effectivePeriod", "effectiveTiming"
            )


class ObservationResource(Observation, kw_only=True):
    """An Observation that says so: a Bundle's entries typed and checked in one pass (lazy.py)."""

    resourceType: Literal["Observation"]


class TimingRepeat(_Element, kw_only=True):
    boundsDuration: Quantity | None = None
    boundsRange: Range | None = None
    boundsPeriod: Period | None = None
    count: PositiveInt | None = None
    countMax: PositiveInt | None = None
    duration: Decimal | None = None
    durationMax: Decimal | None = None
    durationUnit: UnitsOfTime | None = None
    frequency: PositiveInt | None = None
    frequencyMax: PositiveInt | None = None
    period: Decimal | None = None
    periodMax: Decimal | None = None
    periodUnit: UnitsOfTime | None = None
    dayOfWeek: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    timeOfDay: list[Time] | None = None
    when: list[CodeItem] | None = None
    offset: UnsignedInt | None = None

    def __post_init__(self) -> None:
        bounds = (self.boundsDuration, self.boundsRange, self.boundsPeriod)
        if bounds.count(None) < 2:  # inline: it runs for every dosage
            _one_of(self, "boundsDuration", "boundsRange", "boundsPeriod")


class Timing(_Element, kw_only=True):
    event: list[DateTimeItem] | None = None
    repeat: TimingRepeat | None = None
    code: CodeableConcept | None = None


class DoseAndRate(_Element, kw_only=True):
    type: CodeableConcept | None = None
    doseRange: Range | None = None
    doseQuantity: Quantity | None = None
    rateRatio: Ratio | None = None
    rateRange: Range | None = None
    rateQuantity: Quantity | None = None

    def __post_init__(self) -> None:
        if self.doseRange is not None and self.doseQuantity is not None:
            _one_of(self, "doseRange", "doseQuantity")
        if (self.rateRatio, self.rateRange, self.rateQuantity).count(None) < 2:
            _one_of(self, "rateRatio", "rateRange", "rateQuantity")


class Dosage(_Element, kw_only=True):
    sequence: Integer | None = None
    text: String | None = None
    additionalInstruction: list[CodeableConcept] | None = None
    patientInstruction: String | None = None
    timing: Timing | None = None
    asNeededBoolean: bool | None = None
    asNeededCodeableConcept: CodeableConcept | None = None
    site: CodeableConcept | None = None
    route: CodeableConcept | None = None
    method: CodeableConcept | None = None
    doseAndRate: list[DoseAndRate] | None = None
    maxDosePerPeriod: Ratio | None = None
    maxDosePerAdministration: Quantity | None = None

    def __post_init__(self) -> None:
        if self.asNeededBoolean is not None and self.asNeededCodeableConcept is not None:
            _one_of(self, "asNeededBoolean", "asNeededCodeableConcept")


class DispenseRequest(_Element, kw_only=True):
    validityPeriod: Period | None = None
    numberOfRepeatsAllowed: UnsignedInt | None = None
    quantity: Quantity | None = None
    expectedSupplyDuration: Quantity | None = None


class MedicationOrder(_Element, kw_only=True):
    """What a medication mapping reads: a MedicationRequest, or a history record read as one."""

    status: str | None = None
    intent: str | None = None
    id: str | None = None
    statusReason: CodeableConcept | None = None
    doNotPerform: bool | None = None
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    contained: Any = None  # read leniently (Medications by id), never validated
    authoredOn: str | None = None
    dosageInstruction: list[Dosage] | None = None
    dispenseRequest: DispenseRequest | None = None


class MedicationRequest(MedicationOrder, kw_only=True):
    status: Literal[
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    ]
    intent: Literal[
        "proposal",
        "plan",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    ]
    subject: Reference
    id: Id | None = None
    authoredOn: DateTime | None = None
    category: list[CodeableConcept] | None = None
    reasonCode: list[CodeableConcept] | None = None

    def __post_init__(self) -> None:
        if (self.medicationCodeableConcept is None) == (self.medicationReference is None):
            raise ValueError("exactly one of medicationCodeableConcept, medicationReference")


_STU3_DOSE = ("doseQuantity", "doseRange", "rateQuantity", "rateRange", "rateRatio")


class DosageSent(Dosage, kw_only=True):
    """A Dosage as sent, noticing STU3 dose elements outside doseAndRate (repair moves them)."""

    doseQuantity: Any = UNSET
    doseRange: Any = UNSET
    rateQuantity: Any = UNSET
    rateRange: Any = UNSET
    rateRatio: Any = UNSET


class MedicationRequestResource(MedicationRequest, kw_only=True):
    """A MedicationRequest needing no repair: a Bundle's entries typed in one pass (medications.py).

    Anything `validation.repair` would change (an R5 `medication`, STU3 dose elements) is
    refused here, so that such a Bundle is read entry by entry, repaired, as before.
    """

    resourceType: Literal["MedicationRequest"]
    # A null member counts as present where it is read entry by entry (a second medication[x])
    medicationCodeableConcept: CodeableConcept | UnsetType | None = UNSET  # type: ignore[assignment]
    medicationReference: Reference | UnsetType | None = UNSET  # type: ignore[assignment]
    medication: Any = UNSET  # R5 CodeableReference
    dosageInstruction: list[DosageSent] | None = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.medicationCodeableConcept is None or self.medicationReference is None:
            raise ValueError("a null medication[x]: read entry by entry")
        if self.medicationCodeableConcept is UNSET:
            self.medicationCodeableConcept = None
        if self.medicationReference is UNSET:
            self.medicationReference = None
        MedicationRequest.__post_init__(self)
        if self.medication is not UNSET:
            raise ValueError("an R5 medication element: read entry by entry, repaired")
        for d in self.dosageInstruction or ():
            if (d.doseQuantity, d.doseRange, d.rateQuantity, d.rateRange, d.rateRatio).count(
                UNSET
            ) < len(_STU3_DOSE):
                raise ValueError("STU3 dose elements: read entry by entry, repaired")


class Condition(_Element, kw_only=True):
    subject: Reference
    id: Id | None = None
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    category: list[CodeableConcept] | None = None
    severity: CodeableConcept | None = None
    code: CodeableConcept | None = None
    onsetDateTime: DateTime | None = None
    onsetPeriod: Period | None = None
    onsetString: String | None = None
    abatementDateTime: DateTime | None = None
    abatementPeriod: Period | None = None
    abatementString: String | None = None
    recordedDate: DateTime | None = None


class ConditionResource(Condition, kw_only=True):
    """A Condition that says so: a search's entries typed and checked in one pass (clinical.py).

    Read only from JSON without a null (clinical.typed_conditions), where an absent element
    and None are the same. The onset[x] and abatement[x] variants the mapping never reads are
    declared too, because R4's one-value rule counts them, as `validation.checked` does.
    """

    resourceType: Literal["Condition"]
    onsetAge: Any = None
    onsetRange: Any = None
    abatementAge: Any = None
    abatementRange: Any = None

    def __post_init__(self) -> None:
        onset = (self.onsetDateTime, self.onsetPeriod, self.onsetString, self.onsetAge)
        abatement = (self.abatementDateTime, self.abatementPeriod, self.abatementString)
        if (
            onset.count(None) + (self.onsetRange is None) < 4
            or abatement.count(None) + (self.abatementAge, self.abatementRange).count(None) < 4
        ):  # unrolled: it runs for every Condition
            for variants in CHOICES["Condition"]:
                if sum(getattr(self, name) is not None for name in variants) > 1:
                    _one_of(self, *sorted(variants))


class Reaction(_Element, kw_only=True):
    manifestation: list[CodeableConcept]  # 1..*
    substance: CodeableConcept | None = None
    severity: Literal["mild", "moderate", "severe"] | None = None


class AllergyIntolerance(_Element, kw_only=True):
    patient: Reference
    id: Id | None = None
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    type: Literal["allergy", "intolerance"] | None = None
    category: list[Literal["food", "medication", "environment", "biologic"]] | None = None
    criticality: Literal["low", "high", "unable-to-assess"] | None = None
    code: CodeableConcept | None = None
    reaction: list[Reaction] | None = None


class Patient(_Element, kw_only=True):
    id: Id | None = None
    gender: Literal["male", "female", "other", "unknown"] | None = None
    birthDate: Date | None = None
    deceasedBoolean: bool | None = None
    deceasedDateTime: DateTime | None = None


class ServiceRequest(_Element, kw_only=True):
    status: Literal[
        "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"
    ]
    intent: Literal[
        "proposal",
        "plan",
        "directive",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    ]
    subject: Reference
    id: Id | None = None
    code: CodeableConcept | None = None
    category: list[CodeableConcept] | None = None


class DiagnosticReport(_Element, kw_only=True):
    status: Literal[
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    ]
    code: CodeableConcept
    id: Id | None = None
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    issued: Instant | None = None
    conclusion: String | None = None


SHAPES: dict[str, type[Struct]] = {
    shape.__name__: shape
    for shape in (
        Observation,
        MedicationRequest,
        Condition,
        AllergyIntolerance,
        Patient,
        ServiceRequest,
        DiagnosticReport,
    )
}
# Choice elements of a resource carry one value (R4 [x]). Checked on the resource's keys, so
# that a variant the shape does not declare counts too (valueRange beside valueQuantity).
_AGE_ETC = "DateTime Age Period Range String"
CHOICES: dict[str, tuple[frozenset[str], ...]] = {
    rtype: tuple(frozenset(prefix + t for t in types.split()) for prefix, types in choices)
    for rtype, choices in {
        "MedicationRequest": (("medication", "CodeableConcept Reference"),),
        "Condition": (("onset", _AGE_ETC), ("abatement", _AGE_ETC)),
        "Patient": (("deceased", "Boolean DateTime"), ("multipleBirth", "Boolean Integer")),
        "ServiceRequest": (
            ("quantity", "Quantity Ratio Range"),
            ("occurrence", "DateTime Period Timing"),
            ("asNeeded", "Boolean CodeableConcept"),
        ),
        "DiagnosticReport": (("effective", "DateTime Period"),),
    }.items()
}
