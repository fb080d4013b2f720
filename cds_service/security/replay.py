"""jti replay protection (CDS Hooks 2.0 §JWT: a jti is used once within its lifetime)."""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class ReplayStoreUnavailable(Exception):
    """The shared store cannot be reached: refuse rather than risk accepting a replay."""


class ReplayStore(Protocol):
    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record (iss, jti) until expires_at (epoch seconds); False if it was seen already."""
        ...


class MemoryReplayStore:
    """Per-process store: right for one worker; use Redis when several workers serve."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}
        self._expiry_heap: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        key = (iss, jti)
        with self._lock:
            now = self._clock()
            self._purge(now)
            if key in self._seen:
                return False
            self._seen[key] = expires_at
            heapq.heappush(self._expiry_heap, (expires_at, key))
            return True

    def __len__(self) -> int:
        return len(self._seen)

    def _purge(self, now: float) -> None:
        while self._expiry_heap and self._expiry_heap[0][0] <= now:
            expires_at, key = heapq.heappop(self._expiry_heap)
            if self._seen.get(key) == expires_at:
                del self._seen[key]


class RedisReplayStore:
    """Shared store: SET NX with an expiry, so every worker and instance sees each jti."""

    def __init__(
        self, client: Any, *, prefix: str = "cds:jti:", clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "cds:jti:") -> RedisReplayStore:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        return cls(client, prefix=prefix)

    def key_for(self, iss: str, jti: str) -> str:
        """Hashed so that client-chosen strings never become raw Redis keys."""
        digest = hashlib.sha256(f"{iss}\x00{jti}".encode()).hexdigest()
        return f"{self._prefix}{digest}"

    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        import redis

        # Relative expiry: the Redis host's clock need not agree with ours.
        ttl_ms = max(1000, int((expires_at - self._clock()) * 1000))
        try:
            created = self._client.set(self.key_for(iss, jti), b"1", nx=True, px=ttl_ms)
        except redis.RedisError as exc:
            raise ReplayStoreUnavailable(type(exc).__name__) from None
        return bool(created)
