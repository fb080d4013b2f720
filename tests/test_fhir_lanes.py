"""fhir.lanes: the per-server breaker and the deadline that shuts sockets."""

from __future__ import annotations

import socket
import threading
import time

from cds_service.fhir.lanes import Breaker, Deadline, Lanes


def test_breaker_opens_after_failures_in_a_row_and_lets_one_trial_through() -> None:
    breaker = Breaker(failures=2, seconds=0.2)
    breaker.record(False)
    breaker.record(True)  # a success resets the count
    breaker.record(False)
    assert breaker.allow()
    breaker.record(False)
    assert breaker.is_open and not breaker.allow()
    time.sleep(0.25)
    assert breaker.allow(), "after its time, one trial"
    assert not breaker.allow(), "only one trial at a time"
    breaker.record(True)
    assert breaker.allow() and not breaker.is_open


def test_expiry_shuts_a_socket_a_thread_is_blocked_reading() -> None:
    left, right = socket.socketpair()
    deadline = Deadline(10)
    got: list[bytes] = []

    def read() -> None:
        deadline.watch(left)
        got.append(left.recv(10))

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.1)
    assert deadline.expire() == 1
    reader.join(timeout=5)
    assert not reader.is_alive() and got == [b""]
    late, _ = socket.socketpair()
    deadline.watch(late)  # watched after expiry: shut at once
    assert late.recv(10) == b""
    for sock in (left, right, late, _):
        sock.close()


def test_one_lane_per_origin_and_a_bounded_number_of_them() -> None:
    lanes = Lanes(threads=2, failures=5, seconds=1)
    assert lanes.get("http://a:1") is lanes.get("http://a:1")
    assert lanes.get("http://a:1") is not lanes.get("http://a:2")
    for port in range(100):
        lanes.get(f"http://b:{port}")
    assert len(lanes._lanes) <= 64
    lanes.shutdown()
