"""Dosage -> Dose (mg, frequency, route) and dispense/timing -> Course; never guesses."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import msgspec

from fhir_mappings import raw, shapes
from fhir_mappings.domain import Course, Dose
from fhir_mappings.readers import codings as _codings
from fhir_mappings.readers import concept_text as _concept_text
from fhir_mappings.readers import text as _text
from fhir_mappings.terminology import Terminology, normalize_text, remembered

UNIT_DAYS = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.0,
    "a": 365.25,
}
_UNIT_WORDS = {
    "sec": "s",
    "second": "s",
    "seconds": "s",
    "minute": "min",
    "minutes": "min",
    "hour": "h",
    "hours": "h",
    "hr": "h",
    "day": "d",
    "days": "d",
    "week": "wk",
    "weeks": "wk",
    "month": "mo",
    "months": "mo",
    "year": "a",
    "years": "a",
    "y": "a",
}
MASS_MG = {
    "mg": 1.0,
    "g": 1000.0,
    "mcg": 0.001,
    "ug": 0.001,
    "µg": 0.001,
    "μg": 0.001,
    "milligram": 1.0,
    "milligrams": 1.0,
    "gram": 1000.0,
}
COUNT_UNITS = frozenset(
    {
        "{pill}",
        "{pills}",
        "pill",
        "pills",
        "{tab}",
        "{tabs}",
        "tab",
        "tabs",
        "tablet",
        "tablets",
        "{tbl}",
        "{tablet}",
        "{tablets}",
        "cap",
        "caps",
        "capsule",
        "capsules",
        "{capsule}",
        "{capsules}",
        "{cap}",
        "{caps}",
    }
)
VOLUME_ML = {"ml": 1.0, "l": 1000.0}
# timing.code (v3 GTSAbbreviation): administrations per day.
TIMING_CODES = {
    "QD": 1.0,
    "AM": 1.0,
    "PM": 1.0,
    "BED": 1.0,
    "BID": 2.0,
    "TID": 3.0,
    "QID": 4.0,
    "QOD": 0.5,
    "WK": 1 / 7,
    "MO": 1 / 30,
    "Q1H": 24.0,
    "Q2H": 12.0,
    "Q3H": 8.0,
    "Q4H": 6.0,
    "Q6H": 4.0,
    "Q8H": 3.0,
    "Q12H": 2.0,
    "Q24H": 1.0,
}
# Route words (text after case-folding, dots removed) -> route; checked in this order.
ROUTE_WORDS = (
    (r"subcut\w*|sc|sq|sub q", "subcutaneous"),
    (r"intravenous\w*|iv|ivpb|infusion", "intravenous"),
    (r"intramuscular\w*|im", "intramuscular"),
    (r"oral\w*|by mouth|po|per os|sublingual", "oral"),
    (r"topical\w*|cutaneous|skin|dermal", "topical"),
    (r"transdermal\w*|patch", "transdermal"),
    (r"inhal\w*|nebuli[sz]\w*|respiratory", "inhaled"),
    (r"ophthalmic|eye|eyes|intraocular", "ophthalmic"),
    (r"nasal|intranasal|nostril\w*", "nasal"),
    (r"rectal\w*|per rectum|pr", "rectal"),
    (r"intra-?articular", "intra-articular"),
)
_ROUTE_RES = tuple((re.compile(rf"(?<![a-z])(?:{p})(?![a-z])"), v) for p, v in ROUTE_WORDS)
# Dose-form words in a clinical-drug name that fix the route ("... Oral Tablet").
_FORM_ROUTES = ("oral", "topical", "transdermal", "inhaled", "ophthalmic", "nasal", "rectal")


def route_from_text(text: str | None) -> str | None:
    """The route a free text names, if any."""
    if not text:
        return None
    letters = normalize_text(text).replace(".", "")
    for pattern, value in _ROUTE_RES:
        if pattern.search(letters):
            return value
    return None


_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(mg|mcg|g)\b(\s*/\s*(\d+(?:\.\d+)?)?\s*ml\b)?", re.I)


@dataclass(frozen=True)
class Strength:
    """mg per count unit (tablet/capsule) or per mL, and where it came from."""

    mg: float
    per: str  # "unit" | "mL"
    source: str


def strength_from_medication(medication: dict[str, Any]) -> Strength | None:
    """Medication.ingredient[].strength when exactly one ingredient has a mass strength."""
    found: list[Strength] = []
    for ing in raw.objs(medication, "ingredient"):
        ratio = raw.obj(ing, "strength")
        num, den = raw.obj(ratio, "numerator"), raw.obj(ratio, "denominator")
        value = raw.number(num, "value")
        unit = _unit(num)
        if value is None or unit not in MASS_MG:
            continue
        den_value = raw.number(den, "value") or 1.0
        den_unit = _unit(den)
        per = "mL" if den_unit in VOLUME_ML else "unit"
        factor = VOLUME_ML.get(den_unit or "", 1.0)
        found.append(
            Strength(
                value * MASS_MG[unit] / (den_value * factor), per, "Medication.ingredient.strength"
            )
        )
    return found[0] if len(found) == 1 else None


def strength_from_name(name: str | None) -> Strength | None:
    """The single strength in a clinical-drug name: '5 MG Oral Tablet', '1 MG/ML'."""
    if not name:
        return None
    hits = _STRENGTH.findall(normalize_text(name))
    if len(hits) != 1:
        return None
    value, unit, per_ml, ml_amount = hits[0]
    mg = float(value) * MASS_MG[unit.lower()]
    if per_ml:
        return Strength(mg / float(ml_amount or 1), "mL", "drug name")
    return Strength(mg, "unit", "drug name")


def _unit(q: dict[str, Any]) -> str | None:
    unit = raw.string(q, "code") or raw.string(q, "unit")
    return unit.strip().lower() if unit else None


# The elements below are read from their compiled R4 shapes (fhir_mappings.shapes): typed and
# validated, so only blank strings and non-finite numbers are left to refuse.
def _number(value: float | int | None) -> float | None:
    """A number element as raw.number reads it: a finite float, else None."""
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _q_unit(q: shapes.Quantity | None) -> str | None:
    """A Quantity's code, else its unit, folded (as _unit reads a decoded one)."""
    if q is None:
        return None
    unit = _text(q.code) or _text(q.unit)
    return unit.strip().lower() if unit else None


def _q_value(q: shapes.Quantity | None) -> float | None:
    return _number(q.value) if q is not None else None


def duration_days(q: shapes.Quantity | None) -> float | None:
    """A Duration/Quantity of time in days."""
    value = _q_value(q)
    unit = _q_unit(q)
    if value is None or unit is None:
        return None
    unit = _UNIT_WORDS.get(unit, unit)
    return value * UNIT_DAYS[unit] if unit in UNIT_DAYS else None


@dataclass
class _Acc:
    unknown: list[str]
    notes: list[str]


def _given(q: shapes.Quantity | None) -> bool:
    """A Quantity that says something (an empty one, `{}`, is as good as absent)."""
    return q is not None and ((q.value, q.unit, q.code, q.system, q.comparator).count(None) < 5)


def _dose_quantity(dosage: shapes.Dosage, acc: _Acc) -> shapes.Quantity | None:
    for dr in dosage.doseAndRate or ():
        if _given(dr.doseQuantity):
            return dr.doseQuantity
        rng = dr.doseRange
        if rng is not None and _given(rng.high):
            acc.notes.append("dose range: the upper bound is used")
            return rng.high
        if rng is not None and _given(rng.low):
            acc.notes.append("dose range without upper bound: the lower bound is used")
            return rng.low
    return None


def _mg_per_administration(
    q: shapes.Quantity, strength: Strength | None, acc: _Acc
) -> tuple[float | None, bool]:
    value, unit = _q_value(q), _q_unit(q)
    if value is None:
        acc.unknown.append("no dose quantity")
        return None, False
    if unit is None:
        acc.unknown.append("dose has no unit")
        return None, True
    if unit in MASS_MG:
        return value * MASS_MG[unit], False
    if unit in COUNT_UNITS and strength is not None and strength.per == "unit":
        acc.notes.append(f"{strength.mg:g} mg per {unit} from the {strength.source}")
        return value * strength.mg, True
    if unit in VOLUME_ML and strength is not None and strength.per == "mL":
        acc.notes.append(f"{strength.mg:g} mg/mL from the {strength.source}")
        return value * VOLUME_ML[unit] * strength.mg, True
    acc.unknown.append(f"dose unit {unit!r} is not a mass and no matching strength is known")
    return None, True


@dataclass(frozen=True)
class _Pattern:
    """Administrations per day (mean), distinct dosing days a week, doses on each such day."""

    per_day: float
    days_per_week: float | None
    per_dosing_day: float | None


def _times(rep: shapes.TimingRepeat) -> list[str]:
    return [*(rep.timeOfDay or ()), *(rep.when or ())]


def _days_of_week(rep: shapes.TimingRepeat) -> list[str]:
    return sorted(set(rep.dayOfWeek)) if rep.dayOfWeek is not None else []


def _repeat_pattern(rep: shapes.TimingRepeat, freq: float, span_days: float, acc: _Acc) -> _Pattern:
    """frequency per period, narrowed by dayOfWeek; a split dose within one day stays one day."""
    days, times = _days_of_week(rep), _times(rep)
    per_day = freq / span_days
    if days and span_days <= 1:
        # "n times a day (or every few hours) on these days of the week"
        return _Pattern(per_day * len(days) / 7, float(len(days)), per_day)
    if days:
        weeks = max(span_days / 7, 1.0)
        return _Pattern(per_day, len(days) / weeks, freq / len(days))
    if span_days < 7:
        # every span_days (at most daily cover): doses fall on 7 / span days a week
        dosing_days = min(7.0, 7 / span_days)
        return _Pattern(per_day, dosing_days, per_day * 7 / dosing_days)
    per_week = freq * 7 / span_days
    if freq > 1 and len(times) >= freq:
        # several doses at times of one day (when/timeOfDay), once per period
        return _Pattern(per_day, 7 / span_days, freq)
    if freq > 1:
        acc.notes.append(
            f"{freq:g} doses per {span_days / 7:g} week(s) with no dayOfWeek or times of day: "
            "taken as on separate days"
        )
    return _Pattern(per_day, per_week, 1.0)


_NO_REPEAT = shapes.TimingRepeat()


def _per_day(timing: shapes.Timing | None, acc: _Acc) -> _Pattern | None:
    rep = (timing.repeat if timing is not None else None) or _NO_REPEAT
    freq, freq_max = _number(rep.frequency), _number(rep.frequencyMax)
    period, unit = _number(rep.period), _text(rep.periodUnit)
    days, times = _days_of_week(rep), _times(rep)
    if freq_max is not None:
        acc.notes.append("frequencyMax is used (upper bound)")
        freq = freq_max
    if _number(rep.periodMax) is not None:
        acc.notes.append("period range: the shorter period is used (upper bound)")
    if freq is not None or period is not None:
        if unit not in UNIT_DAYS or not period or period <= 0:
            acc.unknown.append("timing.repeat has no usable period/periodUnit")
            return None
        span_days = period * UNIT_DAYS[unit]
        if span_days <= 0:  # a period so small it underflows
            acc.unknown.append("timing.repeat has no usable period/periodUnit")
            return None
        if freq is not None and freq <= 0:
            acc.unknown.append("timing.repeat.frequency is not positive")
            return None
        return _repeat_pattern(rep, freq if freq is not None else 1.0, span_days, acc)
    if days:
        per_dosing_day = float(max(1, len(times)))
        return _Pattern(per_dosing_day * len(days) / 7, float(len(days)), per_dosing_day)
    if times:
        return _Pattern(float(len(times)), 7.0, float(len(times)))
    code = next(
        (c.code for c in _codings(timing.code if timing is not None else None) if _text(c.code)),
        None,
    )
    if code and code.upper() in TIMING_CODES:
        per_day = TIMING_CODES[code.upper()]
        dosing_days = min(7.0, per_day * 7)
        return _Pattern(per_day, dosing_days, per_day * 7 / dosing_days)
    if code:
        acc.unknown.append(f"timing code {code!r} is not known")
        return None
    acc.unknown.append("no timing: administrations per day unknown")
    return None


_TEXT_ROUTES: dict[str, str | None] = {}  # route_from_text by text (pure, bounded)


def _route_named(text: str | None) -> str | None:
    """route_from_text, remembered: route texts and drug names repeat across requests."""
    if text is None:
        return None
    found = _TEXT_ROUTES.get(text, _TEXT_ROUTES)
    if found is _TEXT_ROUTES:
        if len(_TEXT_ROUTES) >= 4096:
            _TEXT_ROUTES.clear()
        found = _TEXT_ROUTES[text] = route_from_text(text)
    return found  # type: ignore[return-value]


def _route(
    dosage: shapes.Dosage, product_name: str | None, term: Terminology, acc: _Acc
) -> str | None:
    route = dosage.route
    for c in _codings(route):
        system, code = _text(c.system), _text(c.code)
        if system and code and (system, code) in term.route_codes:
            return term.route_codes[(system, code)]
    text = _concept_text(route) if route is not None else None
    if text:
        return _route_named(text) or normalize_text(text)
    from_name = _route_named(product_name)
    if from_name in _FORM_ROUTES and product_name:
        acc.notes.append(f"route {from_name} from the drug name")
        return from_name
    return None


def _max_per_day(dosage: shapes.Dosage) -> float | None:
    ratio = dosage.maxDosePerPeriod
    if ratio is None:
        return None
    num, den = ratio.numerator, ratio.denominator
    value, unit, days = _q_value(num), _q_unit(num), duration_days(den)
    if value is not None and unit in MASS_MG and days:
        return value * MASS_MG[unit or ""] / days
    return None


def map_dose(
    dosage: shapes.Dosage, strength: Strength | None, product: str | None, term: Terminology
) -> Dose:
    """One Dosage; fields stay None with a reason in `unknown` when not derivable."""
    acc = _Acc([], [])
    q = _dose_quantity(dosage, acc)
    mg, non_mass = _mg_per_administration(q, strength, acc) if q else (None, False)
    if not q:
        acc.unknown.append("no dose quantity")
    pattern = _per_day(dosage.timing, acc)
    per_day = pattern.per_day if pattern else None
    mg_day = mg * per_day if mg is not None and per_day is not None else None
    if any(v is not None and not math.isfinite(v * 7) for v in (mg, per_day, mg_day)):
        acc.unknown.append("dose or frequency out of range")
        mg = per_day = mg_day = None
        pattern = None
    as_needed = dosage.asNeededBoolean is True or dosage.asNeededCodeableConcept is not None
    count_day, ml_day = _dispense_units(q, mg, strength, per_day)
    return Dose(
        mg_per_administration=mg,
        administrations_per_day=per_day,
        mg_per_day=mg_day,
        mg_per_week=mg_day * 7 if mg_day is not None else None,
        route=_route(dosage, product, term, acc),
        as_needed=as_needed,
        interval_days=1 / per_day if per_day else None,
        unknown=tuple(acc.unknown),
        text=_text(dosage.text),
        dose_value=_q_value(q),
        dose_unit=(_text(q.code) or _text(q.unit)) if q is not None else None,
        non_mass_unit=non_mass,
        max_mg_per_day=_max_per_day(dosage),
        notes=tuple(acc.notes),
        days_per_week=pattern.days_per_week if pattern else None,
        doses_per_dosing_day=pattern.per_dosing_day if pattern else None,
        count_per_day=count_day,
        ml_per_day=ml_day,
    )


def _dispense_units(
    q: shapes.Quantity | None, mg: float | None, strength: Strength | None, per_day: float | None
) -> tuple[float | None, float | None]:
    """Tablets/capsules and mL used a day: as dosed, or mg through the product strength."""
    value, unit = _q_value(q), _q_unit(q)
    if per_day is None or value is None or unit is None:
        return None, None
    if unit in COUNT_UNITS:
        return value * per_day, None
    if unit in VOLUME_ML:
        return None, value * VOLUME_ML[unit] * per_day
    if mg is None or strength is None or strength.mg <= 0:
        return None, None
    if strength.per == "unit":
        return mg * per_day / strength.mg, None
    return None, mg * per_day / strength.mg


_DOSES = 8192  # dosages remembered per terminology (bounded: dosage texts are free text)
_ENCODE = msgspec.json.Encoder(enc_hook=str)  # shapes.Code, a str subclass


def _known_dose(
    dosage: shapes.Dosage, strength: Strength | None, product: str | None, term: Terminology
) -> Dose:
    """map_dose, remembered by the Dosage's content: orders repeat the same few (pure)."""
    key = (_ENCODE.encode(dosage), strength, product)
    found: Dose = remembered(
        term.dose_memo, key, _DOSES, lambda: map_dose(dosage, strength, product, term)
    )
    return found


def map_doses(
    request: shapes.MedicationOrder,
    strength: Strength | None,
    product: str | None,
    term: Terminology,
) -> Dose | None:
    """The dose of a request; with several dosage lines the highest weekly amount is kept."""
    dosages = request.dosageInstruction
    if not dosages:
        return None
    doses = [_known_dose(d, strength, product, term) for d in dosages]
    if len(doses) == 1:
        return doses[0]
    best = max(doses, key=lambda d: d.mg_per_week if d.mg_per_week is not None else -1.0)
    return replace(best, notes=(*best.notes, f"{len(doses)} dosage lines: the highest is shown"))


def _span(period: shapes.Period) -> float | None:
    start = raw.parse_datetime(period.start)
    end = raw.parse_end(period.end)
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 86400


def daily_use(dose: Dose | None, quantity: dict[str, Any]) -> float | None:
    """Dispensed units used a day, in the dispense quantity's unit (tablets, mL or mg)."""
    return _daily_use(dose, _unit(quantity))


def _daily_use(dose: Dose | None, q_unit: str | None) -> float | None:
    if dose is None or dose.administrations_per_day is None:
        return None
    d_unit = (dose.dose_unit or "").strip().lower()
    if not q_unit:
        return None
    if q_unit in COUNT_UNITS:
        return dose.count_per_day
    if q_unit in VOLUME_ML:
        return dose.ml_per_day / VOLUME_ML[q_unit] if dose.ml_per_day else None
    if q_unit in MASS_MG and dose.mg_per_day is not None:
        return dose.mg_per_day / MASS_MG[q_unit]
    if q_unit == d_unit and dose.dose_value is not None:
        return dose.dose_value * dose.administrations_per_day
    return None


def map_course(request: shapes.MedicationOrder, dose: Dose | None, now: datetime) -> Course:
    """Intended duration (first known of the sources below) and, when active, time elapsed."""
    return course_at(intended_course(request, dose), course_start(request), now)


def course_start(request: shapes.MedicationOrder) -> datetime | None:
    """When an active (or on-hold) request's course began: its authoredOn."""
    if _text(request.status) not in ("active", "on-hold"):
        return None
    return raw.parse_datetime(request.authoredOn)


def course_at(intended: Course, start: datetime | None, now: datetime) -> Course:
    """The course with the time elapsed since `start` (the one part read from the clock)."""
    if start is None:
        return intended
    elapsed = max((raw.aware(now) - start).total_seconds() / 86400, 0.0)
    if intended.days is None:
        return Course(days=elapsed, source="since authoredOn", elapsed_days=elapsed)
    return Course(days=intended.days, source=intended.source, elapsed_days=elapsed)


_NO_DISPENSE = shapes.DispenseRequest()


def intended_course(request: shapes.MedicationOrder, dose: Dose | None) -> Course:
    """The intended duration from the request's content alone (no time elapsed)."""
    dispense = request.dispenseRequest or _NO_DISPENSE
    repeats = _number(dispense.numberOfRepeatsAllowed) or 0.0
    fills = 1 + max(repeats, 0.0)
    days: float | None = None
    source: str | None = None
    first_repeat: shapes.TimingRepeat | None = None
    for i, dosage in enumerate(request.dosageInstruction or ()):
        rep = dosage.timing.repeat if dosage.timing is not None else None
        if i == 0:
            first_repeat = rep
        if rep is None:
            continue
        if days is None and rep.boundsDuration:
            days, source = duration_days(rep.boundsDuration), "boundsDuration"
        if days is None and rep.boundsPeriod:
            days, source = _span(rep.boundsPeriod), "boundsPeriod"
    count = _number(first_repeat.count) if first_repeat is not None else None
    if days is None and count and dose is not None and dose.administrations_per_day:
        days, source = count / dose.administrations_per_day, "timing.repeat.count"
    supply = duration_days(dispense.expectedSupplyDuration)
    if days is None and supply is not None:
        days = supply * fills
        source = "expectedSupplyDuration" + (" x (1 + numberOfRepeatsAllowed)" if repeats else "")
    quantity = dispense.quantity
    daily = _daily_use(dose, _q_unit(quantity))
    if days is None and daily:
        days = (_q_value(quantity) or 0.0) / daily * fills
        source = "dispense quantity / daily use" + (" x fills" if repeats else "")
    if days is None and dispense.validityPeriod:
        days, source = _span(dispense.validityPeriod), "validityPeriod"
    if days is None or not math.isfinite(days):
        days, source = None, None
    return Course(days=days, source=source, elapsed_days=None)
