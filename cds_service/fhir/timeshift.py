"""Move FHIR date, dateTime and instant strings in time, keeping each one's precision and form.

Captured cases keep the dates they were received with; replay moves them by the
time since capture, de-identification by a per-patient offset. Unlike parse_datetime (which
reads a date into a UTC datetime), this writes the moved value back in the original's shape:
the same precision, the same zone offset, the same fraction digits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

# A full date, optionally with a time (FHIR date, dateTime, instant), anywhere in a string.
_FULL = (
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?"
)
FULL_DATE = re.compile(rf"^{_FULL}$")
EMBEDDED_DATE = re.compile(rf"(?<![\d-]){_FULL}(?![\d:])")
# Year or year-month: only trusted as dates under an element whose name says so (codes such
# as RxNorm "8640" look like years).
PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
DATE_KEY = re.compile(
    r"(?:[Dd]ate|DateTime|[Ii]nstant|^start$|^end$|^authoredOn$|^issued$|^recorded$|"
    r"^lastUpdated$|^time$|^timestamp$|^capturedAt$)$"
)


@dataclass(frozen=True)
class Shift:
    """A move in time: `delta` for values with a time of day, `days` for calendar dates."""

    delta: timedelta
    days: int

    @classmethod
    def between(cls, then: datetime, now: datetime) -> Shift:
        """From `then` to `now`: a date of then's day becomes the same day relative to now."""
        return cls(now - then, (now.date() - then.date()).days)

    @classmethod
    def by_days(cls, days: int) -> Shift:
        return cls(timedelta(days=days), days)


def _zone(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _moved(match: re.Match[str], shift: Shift) -> str:
    year, month, day, hh, mm, ss, frac, tz = match.groups()
    try:
        if hh is None:
            return (date(int(year), int(month), int(day)) + timedelta(days=shift.days)).isoformat()
        zone = _zone(tz) if tz else None
        micro = round(float(frac) * 1_000_000) if frac else 0
        start = datetime(
            int(year), int(month), int(day), int(hh), int(mm), int(ss or 0), min(micro, 999_999)
        )
        moved = (
            (start.replace(tzinfo=zone) + shift.delta).astimezone(zone)
            if zone
            else (start + shift.delta)
        )
    except (ValueError, OverflowError):
        return match.group(0)
    text = moved.strftime("%Y-%m-%dT%H:%M")
    if ss is not None:
        text += moved.strftime(":%S")
        if frac:
            text += f"{moved.microsecond / 1_000_000:.{len(frac) - 1}f}"[1:]
    if tz:
        text += tz
    return text


def _partial(match: re.Match[str], shift: Shift) -> str:
    year, month = int(match.group(1)), match.group(2)
    if month is None:
        return f"{year + round(shift.days / 365.25):04d}"
    months = year * 12 + int(month) - 1 + round(shift.days / 30.44)
    return f"{months // 12:04d}-{months % 12 + 1:02d}"


def shift_string(value: str, shift: Shift, *, date_key: bool = False) -> str:
    """A date-like string moved; free text with dates in it has each date moved."""
    full = FULL_DATE.match(value)
    if full:
        return _moved(full, shift)
    if date_key and (partial := PARTIAL_DATE.match(value)):
        return _partial(partial, shift)
    return EMBEDDED_DATE.sub(lambda m: _moved(m, shift), value)


def shift_dates(value: Any, shift: Shift) -> Any:
    """Every date in a JSON value moved by `shift` (a new value; the input is untouched)."""
    return walk(value, lambda text, k: shift_string(text, shift, date_key=bool(DATE_KEY.search(k))))


def walk(value: Any, change: Callable[[str, str], str], key: str = "") -> Any:
    """A copy of a JSON value with each string replaced by change(string, its member name)."""
    if isinstance(value, dict):
        return {k: walk(item, change, k) for k, item in value.items()}
    if isinstance(value, list):
        return [walk(item, change, key) for item in value]
    if isinstance(value, str):
        return change(value, key)
    return value
