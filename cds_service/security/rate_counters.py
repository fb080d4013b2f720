"""In-process rate-limit counters (fixed window) that expire as they are read, without a timer.

limits' own memory storage starts a timer thread on nearly every request to expire its
counters; starting a thread cost more CPU than the rest of the rate limit. These counters
are dropped when read past their window, and swept at most once a second so that clients
no longer calling do not keep theirs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from limits.storage import Storage

SCHEME = "cds-memory"
SWEEP_SECONDS = 1.0


class InProcessCounters(Storage):
    """Fixed-window counters of one process: key -> [hits, end of its window]."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 - limits registers the scheme from this list

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        clock: Callable[[], float] = time.time,
        **options: float | str | bool,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, list[float]] = {}
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def windows(self) -> int:
        """Keys with a window held (not __len__: an empty storage must stay truthy)."""
        return len(self._windows)

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Count `amount` hits; the first hit of a key opens its window of `expiry` seconds."""
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            window = self._windows.get(key)
            if window is None or window[1] <= now:
                window = self._windows[key] = [0, now + expiry]
            window[0] += amount
            return int(window[0])

    def get(self, key: str) -> int:
        """Hits in the key's current window (0 once it has ended)."""
        window = self._live(key)
        return 0 if window is None else int(window[0])

    def get_expiry(self, key: str) -> float:
        """When the key's window ends (now, if it has none)."""
        window = self._live(key)
        return self._clock() if window is None else window[1]

    def check(self) -> bool:
        return True

    def reset(self) -> int:
        with self._lock:
            count = len(self._windows)
            self._windows.clear()
        return count

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)

    def _live(self, key: str) -> list[float] | None:
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is not None and window[1] <= now:
                del self._windows[key]
                return None
            return window

    def _sweep(self, now: float) -> None:
        # Bounds memory by the keys seen in the last window, however many clients came before.
        for key in [key for key, window in self._windows.items() if window[1] <= now]:
            del self._windows[key]
        self._next_sweep = now + SWEEP_SECONDS
