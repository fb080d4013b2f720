"""The benchmarks' floor (issue 8): an endpoint that parses the body and answers no cards.

Off unless BENCH_FLOOR_ENDPOINT is on. It sits behind the same middleware as the CDS
services (authentication, rate limit, headers, CORS), so hook latency and throughput can be
compared with what the framework and JSON parsing alone cost on the same request.
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, Response, request

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
    if app.config["BENCH_FLOOR_ENDPOINT"]:
        app.register_blueprint(bp)
