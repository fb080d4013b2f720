"""Bounded memos keyed by a keyed digest of content: whole prefetches, card verdicts."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

import orjson

from fhir_mappings.lazy import LazyResource, piece

# Keyed per process: the digests in memory cannot be matched against guessed resources.
# SHA-256 (hardware-accelerated on current x86) over a secret prefix, truncated to 128 bits.
_KEYED = hashlib.sha256(os.urandom(32))
DEFAULT_SIZE = 65_536  # about 10 MB of digests and shared results per worker


def prefetch_digest(prefetch: Mapping[str, Any]) -> bytes | None:
    """A keyed 128-bit digest of a prefetch's resources (a Bundle's id, meta and links aside).

    Searchset Bundles carry a new id and lastUpdated on every search: the digest reads the
    resources and their fullUrls only, so that the same record gives the same digest.
    """
    digest = _KEYED.copy()
    try:
        for key in sorted(prefetch, key=str):
            piece(digest, str(key).encode())
            value = prefetch[key]
            if isinstance(value, LazyResource):
                value.feed(digest)
            elif _is_bundle(value):
                piece(digest, b"bundle")
                for entry in value["entry"]:
                    entry = entry if isinstance(entry, dict) else {"": entry}
                    piece(digest, orjson.dumps(entry.get("fullUrl")))
                    piece(digest, orjson.dumps(entry.get("resource")))
            else:
                piece(digest, orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return None
    return digest.digest()[:16]


def _is_bundle(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("resourceType") == "Bundle"
        and isinstance(value.get("entry"), list)
    )


def keyed_digest(data: bytes) -> bytes:
    """The per-process keyed 128-bit digest of some bytes."""
    digest = _KEYED.copy()
    digest.update(data)
    return digest.digest()[:16]


class ContentMemo:
    """Bounded LRU of results by content digest, safe across threads (gunicorn gthread).

    No lock: each dict operation is atomic under the GIL, and a key evicted by another thread
    between two operations is a miss. Hit and miss counts are approximate under threads.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, digest: Hashable) -> tuple[bool, Any]:
        try:
            value = self._items[digest]
            self._items.move_to_end(digest)
        except KeyError:
            self.misses += 1
            return False, None
        self.hits += 1
        return True, value

    def put(self, digest: Hashable, result: Any) -> None:
        self._items[digest] = result
        while len(self._items) > self.size:
            try:
                self._items.popitem(last=False)
            except KeyError:  # emptied meanwhile by another thread
                break

    def clear(self) -> None:
        self._items.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


class WeightedMemo(ContentMemo):
    """A ContentMemo bounded by the total weight of its results (e.g. resources mapped)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        super().__init__(size)
        self.weight = 0
        self._lock = threading.Lock()  # the running total must not drift under threads

    def get(self, digest: Hashable) -> tuple[bool, Any]:
        found, item = super().get(digest)
        return (True, item[1]) if found else (False, None)

    def put(self, digest: Hashable, result: Any, weight: int = 1) -> None:
        weight = max(int(weight), 1)
        if weight > self.size:
            return  # larger than the whole memo: not remembered
        with self._lock:
            old = self._items.pop(digest, None)
            self.weight += weight - (old[0] if old else 0)
            self._items[digest] = (weight, result)
            while self.weight > self.size and self._items:
                _, (dropped, _) = self._items.popitem(last=False)
                self.weight -= dropped

    def clear(self) -> None:
        with self._lock:
            super().clear()
            self.weight = 0
