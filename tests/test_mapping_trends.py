"""Trends on Series: latest, previous, peak, time since, change, above ULN."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fhir_mappings import map_patient_state
from fhir_mappings.domain import Measurement, ReferenceRange, Series, is_above_upper_limit
from tests.mapping_builders import NOW, bundle, observation, quantity

RR = [{"high": quantity(200, "U/L")}]


def ck_series() -> Series:
    obs = [
        observation("2157-6", quantity(800, "U/L"), oid="a", when="2026-03-01", referenceRange=RR),
        observation("2157-6", quantity(2400, "U/L"), oid="b", when="2026-04-01", referenceRange=RR),
        observation("2157-6", quantity(900, "U/L"), oid="c", when="2026-05-01", referenceRange=RR),
        observation("2157-6", quantity(600, "U/L"), oid="d", when="2026-06-04", referenceRange=RR),
    ]
    return map_patient_state({"labs": bundle(*reversed(obs))}, now=NOW).get_series("ck")


def test_trend_facts() -> None:
    s = ck_series()
    assert s.latest is not None and s.latest.resource_id == "d"
    assert [m.resource_id for m in s.previous] == ["a", "b", "c"]
    assert s.peak is not None and s.peak.resource_id == "b"
    assert s.baseline is not None and s.baseline.resource_id == "a"
    assert s.time_since_latest(NOW) == timedelta(days=10, hours=12)
    assert s.change_from_peak() == pytest.approx(-1800)
    assert s.fraction_fallen_from_peak() == pytest.approx(0.75)
    assert s.change_from_baseline() == pytest.approx(-200)
    assert s.is_rising() is False
    assert s.above_upper_limit(default_upper_limit=1000) is True  # range high 200 wins
    assert [m.resource_id for m in s.within(NOW, 45).items] == ["c", "d"]


def m(value: float | None, high: float | None = None, comparator: str | None = None) -> Measurement:
    rr = ReferenceRange(None, high, "U/L") if high is not None else None
    return Measurement("ck", value, "U/L", NOW, comparator=comparator, reference_range=rr)


@pytest.mark.parametrize(
    ("measurement", "default", "expected"),
    [
        (m(300, high=200), None, True),
        (m(150, high=200), 100, False),  # the Observation's range beats the default
        (m(150), 100, True),  # no range: the named default applies
        (m(150), None, None),  # no limit known
        (m(None), 100, None),  # no value
        (m(5, comparator="<"), 10, False),  # "<5" is below a limit of 10
        (m(5, comparator="<"), 4, None),  # "<5" may or may not exceed 4
        (m(1000, comparator=">"), 200, True),
        (m(100, comparator=">"), 200, None),
    ],
)
def test_above_upper_limit(
    measurement: Measurement, default: float | None, expected: bool | None
) -> None:
    assert is_above_upper_limit(measurement, default) is expected


def test_empty_and_single_series() -> None:
    empty = Series("ck")
    assert empty.latest is None and empty.peak is None and empty.change_from_peak() is None
    assert empty.time_since_latest(NOW) is None and empty.above_upper_limit(200) is None
    single = Series("ck", (m(300),))
    assert single.change_from_baseline() is None and single.is_rising() is None
    assert single.change_from_peak() == 0


def test_rising() -> None:
    s = Series("ck", (m(300), m(None), m(500)))
    assert s.is_rising() is True
    assert s.latest_valued is not None and s.latest_valued.value == 500
