"""JWK Sets fetched from allow-listed jku URLs: cached, refetched once on an unknown kid."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from cds_service.security.keys import index_key_set
from cds_service.security.urls import check_jku_url

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 256 * 1024


class JwksUnavailable(Exception):
    """A key set could not be fetched or parsed (the reason is safe to log)."""


@dataclass
class _Entry:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float | None = None  # last successful fetch
    attempted_at: float = float("-inf")  # last attempt, successful or not


class JwksFetcher:
    """Fetch and cache key sets; an attacker's unknown kids cannot force a fetch storm."""

    def __init__(
        self,
        *,
        timeout: float = 2.0,
        cache_seconds: float = 3600.0,
        min_refetch_seconds: float = 10.0,
        allow_loopback_http: bool = False,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._min_refetch = min_refetch_seconds
        self._allow_loopback_http = allow_loopback_http
        self._session = session or requests.Session()
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock_for(self, url: str) -> threading.Lock:
        # One lock per URL: a slow client's key server does not stall the others' calls.
        with self._locks_guard:
            return self._locks.setdefault(url, threading.Lock())

    def find_key(self, url: str, kid: str) -> dict[str, Any] | None:
        """The JWK with this kid at url, fetching when stale and at most once more if unknown."""
        with self._lock_for(url):
            entry = self._entries.setdefault(url, _Entry())
            now = self._clock()
            fresh = entry.fetched_at is not None and now - entry.fetched_at < self._cache_seconds
            fetched = False
            if not fresh and now - entry.attempted_at >= self._min_refetch:
                self._refresh(url, entry, now)
                fetched = True
            if kid in entry.keys:
                return entry.keys[kid]
            if not fetched and now - entry.attempted_at >= self._min_refetch:
                # The client may have rotated its keys: one refetch, never a loop.
                self._refresh(url, entry, now)
            return entry.keys.get(kid)

    def _refresh(self, url: str, entry: _Entry, now: float) -> None:
        entry.attempted_at = now
        try:
            keys = self._fetch(url)
        except JwksUnavailable as exc:
            # Keep serving the last good set; the failure is retried after min_refetch.
            log.warning("JWK Set fetch from %s failed: %s", url, exc)
            return
        entry.keys = keys
        entry.fetched_at = now

    def _fetch(self, url: str) -> dict[str, dict[str, Any]]:
        try:
            check_jku_url(url, allow_loopback_http=self._allow_loopback_http)
            response = self._session.get(
                url,
                timeout=(self._timeout, self._timeout),
                allow_redirects=False,
                stream=True,
                headers={"Accept": "application/json"},
            )
            with response:
                if response.status_code != 200:
                    raise JwksUnavailable(f"HTTP {response.status_code}")
                body = _read_bounded(response)
            return index_key_set(json.loads(body), strict=False)
        except ValueError as exc:  # bad URL, JSON or key set shape (UnusableKey included)
            raise JwksUnavailable(str(exc)[:200]) from None
        except requests.RequestException as exc:
            raise JwksUnavailable(type(exc).__name__) from None


def _read_bounded(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=16384):
        size += len(chunk)
        if size > MAX_JWKS_BYTES:
            raise JwksUnavailable(f"key set larger than {MAX_JWKS_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
