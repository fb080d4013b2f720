"""Bounded memos keyed by a keyed digest of content (card and suggestion verdicts)."""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

# Keyed per process: the digests in memory cannot be matched against guessed resources.
# SHA-256 (hardware-accelerated on current x86) over a secret prefix, truncated to 128 bits.
_KEYED = hashlib.sha256(os.urandom(32))
DEFAULT_SIZE = 65_536  # about 10 MB of digests and shared results per worker


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
