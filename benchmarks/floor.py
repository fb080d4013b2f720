"""The benchmarks' floor: an endpoint that parses the body and answers no cards.

Registered only by the benchmarks (`create_bench_app`, `python -m benchmarks.serve`), and
then only when BENCH_FLOOR_ENDPOINT is on; the product app never imports this module. It sits
behind the same middleware as the CDS services (authentication, rate limit, headers, CORS),
so hook latency and throughput can be compared with what the framework and JSON parsing
alone cost on the same request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, request

from cds_service.app import create_app
from cds_service.errors import InvalidRequest

bp = Blueprint("bench", __name__)
PATH = "/_bench/empty-cards"
_EMPTY = b'{"cards":[]}'


@bp.post(PATH)
def empty_cards() -> Response:
    """json.loads of the request body plus an empty card list: the floor of a hook call."""
    try:
        json.loads(request.get_data())
    except ValueError:
        raise InvalidRequest("malformed JSON") from None
    return Response(_EMPTY, mimetype="application/json")


def init_app(app: Flask) -> None:
    """Register the floor on an app built by create_app, if BENCH_FLOOR_ENDPOINT is on."""
    if app.config["BENCH_FLOOR_ENDPOINT"]:
        app.register_blueprint(bp)


def create_bench_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The product app, plus the floor endpoint when the settings turn it on."""
    app = create_app(config)
    init_app(app)
    return app
