"""Card and suggestion uuids (CDS Hooks 'Card' and 'Suggestion'): random version-4 uuids.

uuid.uuid4 asks the kernel for 16 bytes each time, and a patient-view call renders about six;
a system call there costs ~14 us, and building a uuid.UUID to print it ~3 us more. Here
os.urandom is read 4 KiB at a time (one call per 256 ids), the version and variant bits are
set on the whole block, and its ids are written out at once. A forked worker starts with an
empty pool: no two processes hand out the same id.
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096
# RFC 4122 4.4: the version (4) in the high nibble of octet 6, the variant (10) in octet 8.
_VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))
_lock = threading.Lock()
_pool: list[str] = []


def _draw() -> list[str]:
    """256 uuids from one read of the kernel's random bytes, in their string form."""
    raw = bytearray(os.urandom(_POOL_BYTES))
    raw[6::16] = raw[6::16].translate(_VERSION)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, len(h), 32)
    ]


def new_uuid() -> str:
    """A random (version 4) uuid, as uuid.uuid4 makes it, in its string form."""
    global _pool
    with _lock:
        if not _pool:
            _pool = _draw()
        return _pool.pop()


def forget() -> None:
    """Drop the ids not handed out yet (in a forked child: they are the parent's)."""
    global _pool
    _pool = []


def _after_fork_in_child() -> None:
    # The lock is copied as it was: held, if another thread was drawing, by a thread the
    # child does not have. The child has one thread: a new lock is free.
    global _lock
    _lock = threading.Lock()
    forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
