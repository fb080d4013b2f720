"""One slow FHIR server must not starve calls naming another.

Each FHIR server (origin: scheme, host, port) gets its own lane: a bounded set of fetch threads
(queued fetches hold no thread and are cancelled when the hook's budget ends) and a circuit
breaker. A hook's budget is enforced on the connection itself: when it ends, the sockets its
fetches are reading are shut down, so a drip-feeding server cannot keep a thread.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Origins remembered per process; the least recently used lane beyond it is shut down.
MAX_LANES = 64


class Deadline:
    """The hook's remaining time budget (monotonic clock) and the sockets reading within it."""

    def __init__(self, seconds: float) -> None:
        self.expires = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._reading: dict[int, socket.socket] = {}
        self._expired = False

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        """The calling thread is about to read a response on `sock`."""
        if sock is None:
            return
        with self._lock:
            if not self._expired:
                self._reading[threading.get_ident()] = sock
                return
        _shut(sock)

    def unwatch(self) -> None:
        """The calling thread's response is read (its socket may go back to the pool)."""
        with self._lock:
            self._reading.pop(threading.get_ident(), None)

    def expire(self) -> int:
        """The budget is over: shut every socket still being read; later reads fail at once."""
        with self._lock:
            self._expired = True
            reading, self._reading = list(self._reading.values()), {}
        for sock in reading:
            _shut(sock)
        return len(reading)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv (close alone may not)


_current = threading.local()


def current_deadline() -> Deadline | None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    return deadline


def run_within(deadline: Deadline, func: Any, *args: Any) -> Any:
    """Run `func` on this fetch thread with `deadline` watching its connections."""
    _current.deadline = deadline
    try:
        return func(*args)
    finally:
        deadline.unwatch()
        _current.deadline = None


class _Watched:
    """Mixin: register the socket with the fetch's deadline before waiting for the answer."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline = current_deadline()
        if deadline is not None:
            deadline.watch(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Watched, HTTPConnection):
    """An http connection the fetch lane can close when the hook's budget ends."""


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    """An https connection the fetch lane can close when the hook's budget ends."""


class WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


POOL_CLASSES = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}


class Breaker:
    """Per-origin circuit breaker: open after `failures` in a row, one trial after `seconds`."""

    def __init__(self, failures: int, seconds: float) -> None:
        self.threshold = failures
        self.seconds = seconds
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._trial = False

    def allow(self) -> bool:
        with self._lock:
            if self._failures < self.threshold:
                return True
            if time.monotonic() < self._open_until or self._trial:
                return False
            self._trial = True  # half-open: this fetch decides
            return True

    def record(self, ok: bool) -> None:
        with self._lock:
            self._trial = False
            if ok:
                self._failures = 0
                return
            self._failures += 1
            if self._failures >= self.threshold:
                self._open_until = time.monotonic() + self.seconds

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._failures >= self.threshold and time.monotonic() < self._open_until


class Lane:
    """One FHIR server's fetch threads and breaker."""

    def __init__(self, threads: int, failures: int, seconds: float) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fhir")
        self.breaker = Breaker(failures, seconds)


class Lanes:
    """The lanes of one process, by origin, least recently used dropped beyond MAX_LANES."""

    def __init__(self, threads: int, failures: int, seconds: float) -> None:
        self._args = (threads, failures, seconds)
        self._lock = threading.Lock()
        self._lanes: OrderedDict[str, Lane] = OrderedDict()

    def get(self, origin: str) -> Lane:
        with self._lock:
            lane = self._lanes.get(origin)
            if lane is None:
                lane = self._lanes[origin] = Lane(*self._args)
                while len(self._lanes) > MAX_LANES:
                    _, old = self._lanes.popitem(last=False)
                    old.pool.shutdown(wait=False, cancel_futures=True)
            self._lanes.move_to_end(origin)
            return lane

    def shutdown(self) -> None:
        with self._lock:
            for lane in self._lanes.values():
                lane.pool.shutdown(wait=False, cancel_futures=True)
            self._lanes.clear()
