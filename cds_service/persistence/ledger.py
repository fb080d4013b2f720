"""Audit records a killed process never wrote are counted at the next start.

Each audit writer keeps two counters in a small memory-mapped file of its own: records taken
into its queue, and records settled (written, or dropped and already counted). The page cache
keeps the file's contents when the process is SIGKILLed, so the next process to open the store
finds the file of a process that is gone, logs `taken - settled` records as lost, and removes
it. A clean shutdown flushes the queue and removes its own file.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import mmap
import os
import struct
import threading
from pathlib import Path

log = logging.getLogger("cds_service.persistence.audit")

_FORMAT = struct.Struct("<QQ")  # taken, settled
_SUFFIX = ".ledger"
_numbers = itertools.count(1)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _is_running(name: str) -> bool:
    pid, start = name.split("-")[:2]
    return pid.isdigit() and _start_time(int(pid)) == start


class AuditLedger:
    """This process's counters, in `directory/<pid>-<start>-<n>.ledger`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        start = _start_time(os.getpid()) or "0"
        self.path = directory / f"{os.getpid()}-{start}-{next(_numbers)}{_SUFFIX}"
        self._lock = threading.Lock()
        with open(self.path, "wb") as file:
            file.write(bytes(_FORMAT.size))
        with open(self.path, "r+b") as file:
            self._map: mmap.mmap | None = mmap.mmap(file.fileno(), _FORMAT.size)
        self.taken = self.settled = 0

    def take(self, count: int = 1) -> None:
        self._store(taken=count)

    def settle(self, count: int = 1) -> None:
        self._store(settled=count)

    def _store(self, taken: int = 0, settled: int = 0) -> None:
        with self._lock:
            self.taken += taken
            self.settled += settled
            if self._map is not None:
                _FORMAT.pack_into(self._map, 0, self.taken, self.settled)

    def close(self) -> None:
        """Clean shutdown: every record is settled or counted; the file goes."""
        with self._lock:
            if self._map is not None:
                self._map.close()
                self._map = None
        with contextlib.suppress(OSError):
            self.path.unlink()


def count_lost(directory: Path) -> int:
    """Records queued by processes that ended without settling them; logged, files removed."""
    if not directory.is_dir():
        return 0
    lost = 0
    for path in sorted(directory.glob(f"*{_SUFFIX}")):
        if _is_running(path.name):
            continue
        # Claim it first: several workers start at once and only one may count it.
        claimed = path.with_suffix(f".claimed-{os.getpid()}")
        try:
            path.rename(claimed)
        except OSError:
            continue
        try:
            taken, settled = _FORMAT.unpack(claimed.read_bytes()[: _FORMAT.size])
        except (OSError, struct.error):
            taken = settled = 0
        with contextlib.suppress(OSError):
            claimed.unlink()
        if taken > settled:
            pid = path.name.split("-")[0]
            log.error(
                "audit records lost: %d queued by process %s were never written "
                "(it ended without a clean shutdown)",
                taken - settled,
                pid,
            )
            lost += taken - settled
    return lost
