"""Override analytics: shown, accepted, overridden, rate and top reasons per period."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from persistence_helpers import audit_entry, feedback

from cds_service.persistence import Store
from cds_service.persistence.audit import write_entries
from cds_service.persistence.commands import format_table
from cds_service.persistence.db import write_transaction
from cds_service.persistence.feedback import item_from_wire, store_items
from cds_service.persistence.report import ReportFilter, override_report

PV, OS = "myopathy-patient-view", "myopathy-order-select"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def seeded(engine: Any, settings: dict[str, Any]) -> Iterator[Store]:
    """IS-2: 4 cards in week 47 (2 overridden, 1 accepted, 1 ignored), 1 in week 48
    (overridden); MON-1 on order-select: 2 cards in week 47, one on Sunday night, 1 accepted."""
    store = Store.open(settings)
    c = [str(uuid.uuid4()) for _ in range(7)]
    store.submit_audit(audit_entry((c[0], "IS-2"), (c[1], "IS-2"), at=at("2026-11-17T09:00:00")))
    store.submit_audit(audit_entry((c[2], "IS-2"), (c[3], "IS-2"), at=at("2026-11-17T15:00:00")))
    store.submit_audit(audit_entry((c[4], "IS-2"), at=at("2026-11-24T08:00:00")))
    store.submit_audit(audit_entry((c[5], "MON-1"), at=at("2026-11-18T10:00:00"), service=OS))
    store.submit_audit(audit_entry((c[6], "MON-1"), at=at("2026-11-22T23:30:00"), service=OS))
    assert store.flush()
    store.record_feedback(
        PV,
        [
            feedback(c[0], reason="a"),
            feedback(c[0], reason="a", at="2026-11-17T09:05:00Z"),  # same card again: once
            feedback(c[1], reason="a"),
            feedback(c[2], "accepted"),
            feedback(c[4], reason="b"),
            feedback(str(uuid.uuid4()), reason="a"),  # never issued
        ],
    )
    store.record_feedback(OS, [feedback(c[6], "accepted")])
    yield store
    store.close()


def summary(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            r["period_start"],
            r["recommendation_id"],
            r["shown"],
            r["accepted"],
            r["overridden"],
            r["override_rate"],
            [(x["code"], x["count"]) for x in r["top_override_reasons"]],
        )
        for r in report["rows"]
    ]


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (
            "week",
            [
                ("2026-11-23", "IS-2", 1, 0, 1, 1.0, [("b", 1)]),
                ("2026-11-16", "IS-2", 4, 1, 2, 0.6667, [("a", 2)]),
                ("2026-11-16", "MON-1", 2, 1, 0, 0.0, []),
            ],
        ),
        (
            "month",
            [
                ("2026-11-01", "IS-2", 5, 1, 3, 0.75, [("a", 2), ("b", 1)]),
                ("2026-11-01", "MON-1", 2, 1, 0, 0.0, []),
            ],
        ),
        (
            "day",
            [
                ("2026-11-24", "IS-2", 1, 0, 1, 1.0, [("b", 1)]),
                ("2026-11-22", "MON-1", 1, 1, 0, 0.0, []),
                ("2026-11-18", "MON-1", 1, 0, 0, None, []),
                ("2026-11-17", "IS-2", 4, 1, 2, 0.6667, [("a", 2)]),
            ],
        ),
    ],
)
def test_report_per_period(seeded: Store, period: str, expected: list[tuple[Any, ...]]) -> None:
    report = override_report(seeded.engine, ReportFilter(period=period))
    assert summary(report) == expected
    assert report["feedbackForUnknownCards"] == 1


def test_report_filters_by_service_and_dates(seeded: Store) -> None:
    by_service = override_report(seeded.engine, ReportFilter(period="month", service_id=OS))
    assert [r[1] for r in summary(by_service)] == ["MON-1"]
    assert by_service["feedbackForUnknownCards"] == 0
    window = ReportFilter(
        period="week", since=at("2026-11-20T00:00:00"), until=at("2026-11-23T00:00:00")
    )
    assert summary(override_report(seeded.engine, window)) == [
        ("2026-11-16", "MON-1", 1, 1, 0, 0.0, [])
    ]


def test_report_on_an_empty_database(engine: Any) -> None:
    report = override_report(engine, ReportFilter())
    assert report["rows"] == [] and report["feedbackForUnknownCards"] == 0


def test_report_endpoint_and_cli_agree(
    seeded: Store, settings: dict[str, Any], capsys: Any, monkeypatch: Any
) -> None:
    from cds_service.cli import main

    monkeypatch.setenv("CDS_DATABASE_URL", settings["DATABASE_URL"])
    monkeypatch.setenv("CDS_DATA_DIR", settings["DATA_DIR"])
    assert (
        main(["report", "--period", "week", "--service", PV, "--from", "2026-11-16", "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert [r[:6] for r in summary(data)] == [
        ("2026-11-23", "IS-2", 1, 0, 1, 1.0),
        ("2026-11-16", "IS-2", 4, 1, 2, 0.6667),
    ]
    assert main(["report", "--period", "week", "--to", "2026-11-22"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "period",
        "recommendation",
        "fired",
        "patients",
        "would-fire",
        "patients(would-fire)",
        "accepted",
        "overridden",
        "rate",
        "override",
        "reasons",
    ]
    assert table[1].split()[:9] == ["2026-11-16", "IS-2", "4", "1", "0", "0", "1", "2", "67%"]
    assert "a (2)" in table[1]
    assert table[-1].endswith(": 1")


def test_table_format_handles_no_reasons() -> None:
    data = {
        "rows": [
            {
                "period_start": "2026-11-16",
                "recommendation_id": None,
                "shown": 3,
                "accepted": 0,
                "overridden": 0,
                "override_rate": None,
                "top_override_reasons": [],
            }
        ],
        "feedbackForUnknownCards": 0,
    }
    assert format_table(data).splitlines()[1].split() == [
        "2026-11-16",
        "-",
        "3",
        "0",
        "0",
        "0",
        "0",
        "0",
        "-",
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_feedback_racing_its_audit_record_is_known_whatever_commits_first(engine: Any) -> None:
    """Two instances: feedback insert and the audit write overlap; neither sees the other's rows.

    The feedback transaction finds no card and stays open while the audit batch (cards and
    all) commits; then the feedback commits. The report must still count the card as known.
    """
    card = str(uuid.uuid4())
    with write_transaction(engine) as feedback_conn:
        result = store_items(feedback_conn, PV, [item_from_wire(feedback(card))])
        assert result.unknown_cards == [card]  # at this moment the card is not in the audit
        write_entries(engine, [audit_entry((card, "IS-2"), service=PV)])  # commits first
    report = override_report(engine, ReportFilter(period="day"))
    assert report["feedbackForUnknownCards"] == 0
    assert [(r["shown"], r["overridden"]) for r in report["rows"]] == [(1, 1)]
