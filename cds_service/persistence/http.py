"""Flask wiring: the store, the audit listener, and the override report endpoint."""

from __future__ import annotations

import atexit
import os
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from marshmallow import Schema, ValidationError, fields, validate

from cds_service.errors import InvalidRequest
from cds_service.persistence.listener import AuditListener
from cds_service.persistence.report import PERIODS, ReportFilter
from cds_service.persistence.store import Store

# Under /cds-services so the service's authentication covers it; the leading underscore
# keeps it apart from service ids, and GET on two segments matches no CDS Hooks route.
REPORT_PATH = "/cds-services/_reports/overrides"

bp = Blueprint("cds_persistence", __name__)
_FIRST_DAY, _LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


class ReportQuerySchema(Schema):
    """Query string of the override report: period, service, from and to dates (UTC, inclusive)."""

    period = fields.String(load_default="week", validate=validate.OneOf(PERIODS))
    service = fields.String(validate=validate.Length(min=1, max=200))
    # Bounded so that `to` plus its whole day, and period arithmetic, stay representable.
    from_ = fields.Date(data_key="from", validate=validate.Range(min=_FIRST_DAY, max=_LAST_DAY))
    to = fields.Date(validate=validate.Range(min=_FIRST_DAY, max=_LAST_DAY))


_QUERY = ReportQuerySchema()


def report_filter(args: dict[str, Any]) -> ReportFilter:
    """Query parameters -> ReportFilter; `to` is inclusive of that whole day."""
    try:
        data = _QUERY.load(args)
    except ValidationError as exc:
        raise InvalidRequest("invalid report query", details=exc.normalized_messages()) from None
    return ReportFilter(
        period=data["period"],
        service_id=data.get("service"),
        since=_day_start(data.get("from_")),
        until=_day_start(data.get("to"), next_day=True),
    )


def _day_start(day: date | None, *, next_day: bool = False) -> datetime | None:
    if day is None:
        return None
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if next_day else start


@bp.get(REPORT_PATH)
def override_report() -> Response:
    """Per recommendation id and period: shown, accepted, overridden, rate, top reasons."""
    flt = report_filter(request.args.to_dict())
    payload = current_app.extensions["cds_store"].report(flt)
    return Response(orjson.dumps(payload), mimetype="application/json")


def init_app(app: Flask) -> Store:
    """Open the store (schema checked), register the audit listener and the report route."""
    store = Store.open(app.config)
    app.extensions["cds_store"] = store
    app.extensions["cds_hook_listeners"].append(AuditListener(store))
    app.register_blueprint(bp)
    # Shutdown: write what is queued. A forked worker must not reuse the parent's connections.
    atexit.register(store.close)
    os.register_at_fork(after_in_child=store.forget_connections)
    return store
