"""`cds-service db upgrade|current|purge` and `cds-service report`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from functools import wraps
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cds_service.config import load_settings
from cds_service.errors import CDSError
from cds_service.persistence import migrate
from cds_service.persistence.report import PERIODS, ReportFilter, override_report
from cds_service.persistence.retention import purge_audit
from cds_service.persistence.store import ensure_schema, open_engine


def _friendly(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A clear one-line message and exit status 2 instead of a traceback."""

    @wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CDSError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
        except SQLAlchemyError as exc:
            # The class names the failure; the message may quote connection details.
            print(f"error: database unavailable ({type(exc).__name__})", file=sys.stderr)
        return 2

    return run


@_friendly
def _upgrade(args: argparse.Namespace) -> int:
    engine = open_engine(load_settings())
    try:
        before = migrate.schema_state(engine)
        migrate.upgrade(engine, args.revision)
        after = migrate.schema_state(engine)
    finally:
        engine.dispose()
    print(f"schema: {', '.join(before.current) or 'empty'} -> {', '.join(after.current)}")
    return 0


@_friendly
def _current(_args: argparse.Namespace) -> int:
    engine = open_engine(load_settings())
    try:
        state = migrate.schema_state(engine)
    finally:
        engine.dispose()
    print(state.describe)
    return 0 if state.up_to_date else 1


@_friendly
def _purge(args: argparse.Namespace) -> int:
    settings = load_settings()
    days = args.days if args.days is not None else int(settings["AUDIT_RETENTION_DAYS"])
    if days < 1:
        print("retention must be at least 1 day", file=sys.stderr)
        return 2
    engine = open_engine(settings)
    try:
        ensure_schema(engine, auto_upgrade=False)
        result = purge_audit(engine, days)
    finally:
        engine.dispose()
    print(
        f"deleted {result.hook_calls} hook calls and {result.cards} card records "
        f"older than {result.cutoff.isoformat()}"
    )
    return 0


def _day(text: str) -> datetime:
    try:
        return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time.min, tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


@_friendly
def _report(args: argparse.Namespace) -> int:
    flt = ReportFilter(
        period=args.period,
        service_id=args.service,
        since=args.since,
        until=args.until + timedelta(days=1) if args.until else None,
    )
    engine = open_engine(load_settings())
    try:
        ensure_schema(engine, auto_upgrade=False)
        data = override_report(engine, flt)
    finally:
        engine.dispose()
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        print(format_table(data))
    return 0


def format_table(data: dict[str, Any]) -> str:
    """The report as a fixed-width table, one line per recommendation and period."""
    header = (
        "period",
        "recommendation",
        "fired",
        "patients",
        "would-fire",
        "patients(would-fire)",
        "accepted",
        "overridden",
        "rate",
        "override reasons",
    )
    lines = [header]
    for row in data["rows"]:
        rate = row["override_rate"]
        reasons = "; ".join(
            f"{r.get('display') or r.get('code')} ({r['count']})"
            for r in row["top_override_reasons"]
        )
        lines.append(
            (
                row["period_start"],
                row["recommendation_id"] or "-",
                str(row["shown"]),
                str(row.get("patients", 0)),
                str(row.get("would_have_fired", 0)),
                str(row.get("patients_would_have_fired", 0)),
                str(row["accepted"]),
                str(row["overridden"]),
                "-" if rate is None else f"{rate:.0%}",
                reasons,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
    return f"{text}\nfeedback for cards not in the audit trail: {data['feedbackForUnknownCards']}"


def register(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="database schema and retention")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply the Alembic migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(func=_upgrade)
    current = db_sub.add_parser("current", help="show the schema revision (exit 1 if behind)")
    current.set_defaults(func=_current)
    purge = db_sub.add_parser("purge", help="delete audit records older than N days")
    purge.add_argument("--days", type=int, default=None, help="default: CDS_AUDIT_RETENTION_DAYS")
    purge.set_defaults(func=_purge)

    report = subparsers.add_parser(
        "report",
        help="per recommendation and period: fired, would have fired (silent), distinct "
        "patients, accepted, overridden with reasons",
    )
    report.add_argument("--period", choices=PERIODS, default="week")
    report.add_argument("--service", default=None)
    report.add_argument("--from", dest="since", type=_day, default=None, help="YYYY-MM-DD")
    report.add_argument("--to", dest="until", type=_day, default=None, help="YYYY-MM-DD, inclusive")
    report.add_argument("--json", action="store_true", help="JSON instead of a table")
    report.set_defaults(func=_report)
