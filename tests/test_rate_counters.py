"""In-process rate-limit counters, driven through limits' own fixed-window strategy."""

from __future__ import annotations

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from cds_service.security.rate_counters import SWEEP_SECONDS, InProcessCounters


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_refuses_past_its_limit_and_opens_again_when_it_ends() -> None:
    clock = Clock()
    limiter = FixedWindowRateLimiter(InProcessCounters(clock=clock))
    two_a_minute = parse("2 per minute")
    assert [limiter.hit(two_a_minute, "iss:a") for _ in range(3)] == [True, True, False]
    assert limiter.hit(two_a_minute, "iss:b")  # another issuer has its own window
    stats = limiter.get_window_stats(two_a_minute, "iss:a")
    assert (stats.remaining, stats.reset_time) == (0, clock.now + 60)
    clock.now += 59.9
    assert not limiter.hit(two_a_minute, "iss:a")
    clock.now += 0.1
    assert limiter.hit(two_a_minute, "iss:a")
    assert limiter.get_window_stats(two_a_minute, "iss:a").remaining == 1


def test_counters_of_clients_that_stopped_calling_are_swept() -> None:
    clock = Clock()
    counters = InProcessCounters(clock=clock)
    for n in range(1_000):
        counters.incr(f"addr:{n}", 10)
    assert counters.windows() == 1_000
    clock.now += 10 + SWEEP_SECONDS
    counters.incr("addr:new", 10)
    assert counters.windows() == 1
    assert counters.get("addr:0") == 0


def test_reset_clear_and_the_scheme_flask_limiter_is_given() -> None:
    counters = storage_from_string("cds-memory://")
    assert isinstance(counters, InProcessCounters)
    assert counters  # flask-limiter tests a storage's truth before asking it for its health
    assert counters.check()
    counters.incr("a", 60)
    counters.incr("b", 60, amount=3)
    assert counters.get("b") == 3
    counters.clear("b")
    assert counters.get("b") == 0
    assert counters.reset() == 1
    assert counters.get("a") == 0
