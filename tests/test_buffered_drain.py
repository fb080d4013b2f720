"""A draining worker (recycled, or told to stop) finishes what its clients already started."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from cds_service.buffered_worker import in_progress

NOW = 1_000_000.0


def _channel(**overrides: Any) -> Any:
    fields = {
        "requests": [],
        "request": None,
        "total_outbufs_len": 0,
        "creation_time": NOW - 0.01,
        "last_activity": NOW - 0.01,
    }
    fields.update(overrides)
    return SimpleNamespace(**fields)


@pytest.mark.parametrize(
    ("channel", "served"),
    [
        # accepted just before the drain, nothing read yet: its request is on its way
        (_channel(), True),
        (_channel(request=object(), last_activity=NOW), True),  # a body still arriving
        (_channel(requests=[object()], last_activity=NOW), True),  # being answered
        (_channel(total_outbufs_len=10, last_activity=NOW), True),  # answer not yet sent
        # idle keep-alive after a request: nothing in flight, closed
        (_channel(creation_time=NOW - 30, last_activity=NOW - 1), False),
        # accepted long ago and silent ever since: not waited for
        (_channel(creation_time=NOW - 60, last_activity=NOW - 60), False),
    ],
)
def test_what_a_draining_worker_still_serves(channel: Any, served: bool) -> None:
    assert in_progress(channel, NOW) is served
