"""Memoising a pure check of a JSON resource by a digest of its content (hot-path cache)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import orjson

T = TypeVar("T")
# Keyed per process: the digests in memory cannot be matched against guessed resources.
_KEY = os.urandom(32)
DEFAULT_SIZE = 65_536  # about 10 MB of digests and shared results per worker


def content_digest(value: Any) -> bytes | None:
    """A keyed 128-bit digest of the JSON serialisation, or None if it is not serialisable."""
    try:
        data = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return hashlib.blake2b(data, digest_size=16, key=_KEY).digest()


class ContentMemo:
    """Bounded LRU of results by content digest; thread-safe (gunicorn gthread workers)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, digest: bytes) -> tuple[bool, Any]:
        with self._lock:
            if digest in self._items:
                self._items.move_to_end(digest)
                self.hits += 1
                return True, self._items[digest]
            self.misses += 1
            return False, None

    def put(self, digest: bytes, result: Any) -> None:
        with self._lock:
            self._items[digest] = result
            if len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


def memoize_by_content(
    memo: ContentMemo,
) -> Callable[[Callable[[dict[str, Any]], T]], Callable[[dict[str, Any]], T]]:
    """Decorate a deterministic function of one JSON resource: same content, same answer."""

    def decorate(func: Callable[[dict[str, Any]], T]) -> Callable[[dict[str, Any]], T]:
        @wraps(func)
        def wrapper(resource: dict[str, Any]) -> T:
            digest = content_digest(resource)
            if digest is None:
                return func(resource)
            found, result = memo.get(digest)
            if found:
                return result
            result = func(resource)
            memo.put(digest, result)
            return result

        return wrapper

    return decorate
