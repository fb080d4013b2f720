"""Card and suggestion uuids (CDS Hooks 'Card' and 'Suggestion'): random version-4 uuids.

uuid.uuid4 asks the kernel for 16 bytes each time, and a patient-view call renders about six;
a system call there costs ~14 us. The same os.urandom bytes are drawn here 4 KiB at a time
(one call per 256 ids). A forked worker starts with an empty pool: no two processes hand out
the same id.
"""

from __future__ import annotations

import os
import threading
import uuid

_POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_at = 0


def new_uuid() -> str:
    """A random (version 4) uuid, as uuid.uuid4 makes it, in its string form."""
    global _pool, _at
    with _lock:
        if _at >= len(_pool):
            _pool, _at = os.urandom(_POOL_BYTES), 0
        raw = _pool[_at : _at + 16]
        _at += 16
    return str(uuid.UUID(bytes=raw, version=4))


def forget() -> None:
    """Drop the ids not handed out yet (in a forked child: they are the parent's)."""
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=forget)
