"""The one FHIR R4 date, dateTime and instant parser (datatypes.html#dateTime, search.html#date).

A FHIR date is a range as wide as its precision: `2024` is the whole year, `2024-05` the
month, `2024-05-14` the day, `2024-05-14T10:00:00Z` that second. A value without a time zone
is read as UTC. Mapping, search and the suggestion resources all read dates through here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

_DATE_RE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
YEAR, MONTH, DAY, MINUTE, SECOND = "year", "month", "day", "minute", "second"


@dataclass(frozen=True)
class FhirDate:
    """A parsed FHIR date: the instants it covers, [start, end), in UTC."""

    start: datetime
    end: datetime
    precision: str
    offset: timedelta | None  # the written time zone; None when the value had none

    @property
    def has_time(self) -> bool:
        return self.precision in (MINUTE, SECOND)

    @property
    def last_day(self) -> datetime:
        """As the end of a Period: a year or month means its last day (`2024-05` -> May 31).

        Day and finer values stay as written, so the days between a start and an end count
        the same whether the end is written `2024-05-31` or `2024-05`.
        """
        if self.precision in (YEAR, MONTH):
            return self.end - timedelta(days=1)
        return self.start

    def written_zone(self, moment: datetime) -> datetime:
        """`moment` in the time zone the value was written in (naive when it had none)."""
        if self.offset is None:
            return moment.replace(tzinfo=None)
        return moment.astimezone(timezone(self.offset))


def _start(value: Any) -> tuple[datetime, re.Match[str]] | None:
    """The first instant the value covers, in UTC, and the regex match it was read from."""
    if not isinstance(value, str):
        return None
    m = _DATE_RE.match(value.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    try:
        start = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hh or 0),
            int(mm or 0),
            int(ss or 0),
            int(float(frac) * 1_000_000) if frac else 0,
            tzinfo=UTC,
        )
        offset = _offset(tz)
        if offset:
            start -= offset
    except (ValueError, OverflowError):
        return None
    return start, m


def _offset(tz: str | None) -> timedelta | None:
    if not tz:
        return None
    if tz == "Z":
        return timedelta()
    sign = 1 if tz[0] == "+" else -1
    return sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))


def _end(start: datetime, precision: str) -> datetime:
    """The first instant after a value of `precision` starting at `start` (capped at max)."""
    try:
        if precision == YEAR:
            return start.replace(year=start.year + 1)
        if precision == MONTH:
            year, month = divmod(start.month, 12)
            return start.replace(year=start.year + year, month=month + 1)
        step = {DAY: timedelta(days=1), MINUTE: timedelta(minutes=1)}.get(precision)
        return start + (step or timedelta(seconds=1))
    except (ValueError, OverflowError):
        return datetime.max.replace(tzinfo=UTC)


def parse_fhir_date(value: Any) -> FhirDate | None:
    """A FHIR date/dateTime/instant string as the range it covers; None if it is not one."""
    found = _start(value)
    if found is None:
        return None
    start, m = found
    _, month, day, hh, _, ss, _, tz = m.groups()
    if hh is not None:
        precision = SECOND if ss else MINUTE
    else:
        precision = DAY if day else MONTH if month else YEAR
    end = _end(start, precision)
    return FhirDate(start=start, end=end, precision=precision, offset=_offset(tz))


def _full_instant(value: str) -> datetime | None:
    """`YYYY-MM-DDThh:mm:ss(Z|+hh:mm)`, the form nearly every result time takes, in UTC.

    datetime.fromisoformat reads it in C at a tenth of the regex's cost, but accepts more
    than FHIR does: the separators are checked first, so it only sees what _DATE_RE would
    accept (digits it refuses fall back to the regex, which gives the same answer).
    """
    size = len(value)
    if not (
        (
            (size == 20 and value[19] == "Z")
            or (size == 25 and value[19] in "+-" and value[22] == ":")
        )
        and value[4] == value[7] == "-"
        and value[10] == "T"
        and value[13] == value[16] == ":"
    ):
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # the regex path decides
        return None


_ZONED = ("--T::+:", "--T::-:")  # the separators of YYYY-MM-DDThh:mm:ss+hh:mm (every third)


def plainly_valid(value: str, *, date_only: bool) -> bool:
    """Whether value is YYYY-MM-DDThh:mm:ss(Z|+hh:mm), or with date_only YYYY-MM-DD, and valid
    R4 (shapes.DateTime, shapes.Instant); False is no verdict: R4's pattern decides then.

    The separators and the zone's bound (R4: up to 14:00) are checked here, the digits and
    the calendar by fromisoformat, at half the regex's cost; what it refuses (29 February of
    any year, a leap second) and other forms (a fraction, a month) go to the regex.
    """
    size = len(value)
    if size == 25:
        if value[4:23:3] not in _ZONED or (value[20:22] >= "14" and value[20:] != "14:00"):
            return False
    elif size == 20:
        if value[4:20:3] != "--T::Z":
            return False
    elif not (date_only and size == 10 and value[4:8:3] == "--"):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_start(value: Any) -> datetime | None:
    """The first instant a FHIR date covers (`2024-05` -> 2024-05-01T00:00Z)."""
    if isinstance(value, str):
        fast = _full_instant(value)
        if fast is not None:
            return fast
    found = _start(value)
    return found[0] if found else None


def parse_end(value: Any) -> datetime | None:
    """A FHIR date as the end of a Period (`2024-05` -> 2024-05-31); see FhirDate.last_day."""
    parsed = parse_fhir_date(value)
    return parsed.last_day if parsed else None
