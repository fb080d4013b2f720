"""One FHIR date parser (fhir_mappings.dates): partial dates as ranges, on both ends.

FHIR R4 datatypes.html#dateTime and search.html#date: `2024-05` covers the whole of May.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.fhir.fixture_server import create_fhir_app
from cds_service.fhir.search import InMemoryFhir
from cds_service.fhir.store import FixtureStore
from cds_service.guideline.resources import shortened
from fhir_mappings import dates, raw
from fhir_mappings.dates import parse_end, parse_fhir_date, parse_start
from fhir_mappings.dosage import intended_course
from fhir_mappings.shapes import MedicationOrder, convert

ROOT = Path(__file__).resolve().parents[1]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "start", "end", "precision"),
    [
        ("2024", utc(2024, 1, 1), utc(2025, 1, 1), "year"),
        ("2024-05", utc(2024, 5, 1), utc(2024, 6, 1), "month"),
        ("2024-12", utc(2024, 12, 1), utc(2025, 1, 1), "month"),
        ("2024-02-29", utc(2024, 2, 29), utc(2024, 3, 1), "day"),
        ("2024-05-14T10:00Z", utc(2024, 5, 14, 10), utc(2024, 5, 14, 10, 1), "minute"),
        ("2024-05-14T10:00:00+02:00", utc(2024, 5, 14, 8), utc(2024, 5, 14, 8, 0, 1), "second"),
        (
            "2024-05-14T10:00:00-05:30",
            utc(2024, 5, 14, 15, 30),
            utc(2024, 5, 14, 15, 30, 1),
            "second",
        ),
        ("2024-05-14T10:00:00.123Z", utc(2024, 5, 14, 10, 0, 0, 123000), None, "second"),
        ("2024-05-14T10:00:00", utc(2024, 5, 14, 10), utc(2024, 5, 14, 10, 0, 1), "second"),
    ],
)
def test_a_fhir_date_is_the_range_its_precision_covers(
    text: str, start: datetime, end: datetime | None, precision: str
) -> None:
    parsed = parse_fhir_date(text)
    assert parsed is not None
    assert (parsed.start, parsed.precision) == (start, precision)
    assert parsed.end == (end or start + timedelta(seconds=1))
    assert parse_start(text) == raw.parse_datetime(text) == start


@pytest.mark.parametrize(
    "text", ["", "2024-13", "2024-02-30", "24-05-01", "May 2024", 20240501, None]
)
def test_what_is_not_a_fhir_date_parses_to_none(text: Any) -> None:
    assert parse_fhir_date(text) is None
    assert parse_start(text) is None
    assert parse_end(text) is None


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("2024", utc(2024, 12, 31)),
        ("2024-05", utc(2024, 5, 31)),
        ("2024-02", utc(2024, 2, 29)),
        ("2024-05-14", utc(2024, 5, 14)),
        ("2024-05-14T10:00:00Z", utc(2024, 5, 14, 10)),
    ],
)
def test_a_partial_date_as_a_period_end_is_its_last_day(text: str, end: datetime) -> None:
    assert parse_end(text) == raw.parse_end(text) == end


def test_a_course_between_partial_dates_runs_from_the_first_to_the_last_day() -> None:
    # May 1 to June 30: the same span as writing the days out.
    partial = {"dispenseRequest": {"validityPeriod": {"start": "2026-05", "end": "2026-06"}}}
    days = {"dispenseRequest": {"validityPeriod": {"start": "2026-05-01", "end": "2026-06-30"}}}
    shaped = [convert(r, MedicationOrder) for r in (partial, days)]
    assert intended_course(shaped[0], None).days == intended_course(shaped[1], None).days == 60


def test_shortening_a_course_that_starts_in_a_month_ends_days_after_its_first_day() -> None:
    draft = {
        "resourceType": "MedicationRequest",
        "dispenseRequest": {"validityPeriod": {"start": "2024-05"}},
        "dosageInstruction": [
            {"timing": {"repeat": {"boundsPeriod": {"start": "2024-05-14T08:00:00+02:00"}}}}
        ],
    }
    updated, _ = shortened(draft, 14, None)
    assert updated["dispenseRequest"]["validityPeriod"]["end"] == "2024-05-15"
    bounds = updated["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]
    assert bounds["end"] == "2024-05-28T08:00:00+02:00"


def _obs(ident: str, **when: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2157-6"}]},
        "subject": {"reference": "Patient/p"},
        **when,
    }


OBSERVATIONS = [
    _obs("dec31", effectiveDateTime="2023-12-31T23:30:00Z"),
    _obs("jan1", effectiveDateTime="2024-01-01"),
    _obs("june", effectiveDateTime="2024-06-15T10:00:00Z"),
    _obs("may-june", effectivePeriod={"start": "2024-05", "end": "2024-06"}),
    _obs("feb25", effectiveDateTime="2025-02"),
]


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("ge2024", {"jan1", "june", "may-june", "feb25"}),
        ("gt2024", {"feb25"}),
        ("lt2024", {"dec31"}),
        ("le2024-05", {"dec31", "jan1"}),
        ("le2024-06", {"dec31", "jan1", "may-june", "june"}),
        ("2024", {"jan1", "june", "may-june"}),
        ("eq2024-06", {"june"}),
        ("ne2024", {"dec31", "feb25"}),
        ("sa2024", {"feb25"}),
        ("eb2024", {"dec31"}),
        ("ge2024-06-15T10:00:00Z", {"june", "may-june", "feb25"}),
    ],
)
def test_search_compares_dates_as_ranges(date: str, expected: set[str]) -> None:
    found = InMemoryFhir(OBSERVATIONS).search("Observation", {"date": [date]})
    assert {r["id"] for r in found} == expected


def test_the_fixture_server_answers_a_year_search() -> None:
    client = create_fhir_app(FixtureStore(OBSERVATIONS)).test_client()
    response = client.get("/Observation?patient=p&date=ge2024&_sort=date")
    assert response.status_code == 200
    ids = [e["resource"]["id"] for e in response.get_json()["entry"]]
    assert ids == ["jan1", "may-june", "june", "feb25"]
    assert client.get("/Observation?patient=p&date=ge20x4").status_code == 400


def test_no_other_module_parses_fhir_dates() -> None:
    # persistence reads CDS Hooks feedback timestamps and CLI dates, which are not FHIR dates.
    for package in ("fhir_mappings", "cds_service/fhir", "cds_service/guideline"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "fhir_mappings" / "dates.py":
                continue  # the one parser itself
            calls = {
                node.attr
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.Attribute)
            }
            assert not calls & {"fromisoformat", "strptime"}, path


_INSTANT_PIECES = st.sampled_from(
    ["0", "1", "2", "5", "9", "٢", "a", "-", ":", "T", "t", "Z", "z", "+", ".", " ", "\u00a0"]
)


@given(
    st.one_of(
        st.from_regex(
            r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})\Z"
        ),
        st.lists(_INSTANT_PIECES, min_size=18, max_size=26).map("".join),
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat(timespec="seconds")),
    )
)
def test_the_fast_instant_path_reads_exactly_what_the_regex_reads(text: str) -> None:
    """parse_start's C fast path for full instants changes no answer of the FHIR regex."""
    found = dates._start(text)
    expected = found[0] if found else None
    got = parse_start(text)
    assert got == expected
    assert got is None or got.tzinfo is UTC
