"""Which patients may have a snooze: the patients named by an override, kept in memory.

Most charts opened belong to patients no one overrode a card for; for them patient-view's
snooze lookup needs no database read. The set is read again once a process stores feedback:
every process that commits feedback then appends a byte to a stamp file beside the SQLite
database, and a set read before the stamp's last change is not used. The set may hold too
many patients (an override that has since aged out): those are read as before. An override
stored before its card was audited names its patient through the card once audited; until
then, and without a readable stamp, nothing is ruled out. PostgreSQL deployments span hosts,
and read every time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cds_service.persistence.db import is_sqlite
from cds_service.persistence.snooze import overriding_patients

log = logging.getLogger(__name__)
# The stamp starts again past this size: its identity (inode, size, time) still changes.
_STAMP_MAX_BYTES = 1 << 20
# While an override's card is not audited yet (its worker's writer lingers ~50 ms), the set is
# read again this often: the audit does not touch the stamp.
_UNRESOLVED_SECONDS = 1.0
_StampKey = tuple[int, int, int]
# (stamp, days, patients, when read)
_Loaded = tuple[_StampKey, float, frozenset[str | None], float]


class OverrideIndex:
    """The keyed hashes of patients with an override within the snooze window, per process."""

    def __init__(self, engine: Engine, stamp: Path) -> None:
        self._engine = engine
        self._stamp = stamp
        self._loaded: _Loaded | None = None
        self._loading = threading.Lock()

    @classmethod
    def beside(cls, engine: Engine) -> OverrideIndex | None:
        """The index of a SQLite database file (its stamp created if missing), else None."""
        database = engine.url.database if is_sqlite(engine) else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        index = cls(engine, Path(f"{database}-overrides"))
        try:  # created if missing, and writable: this process's feedback must reach the others
            os.close(os.open(index._stamp, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        except OSError as exc:
            log.warning("snooze index off: its stamp cannot be written (%s)", type(exc).__name__)
            return None
        return index

    def _key(self) -> _StampKey | None:
        try:
            found = os.stat(self._stamp)
        except OSError:
            return None
        return (found.st_ino, found.st_size, found.st_mtime_ns)

    def check(self, patient_hash: str, days: float) -> tuple[bool, bool]:
        """(no override within `days` can name this patient, so no read is needed; the set is
        to be read again), from one look at the stamp."""
        loaded, key = self._loaded, self._key()
        if loaded is None or self._stale(loaded, days, key):
            return False, True
        hashes = loaded[2]
        return None not in hashes and patient_hash not in hashes, False

    def stale(self, days: float) -> bool:
        return self._stale(self._loaded, days, self._key())

    @staticmethod
    def _stale(loaded: _Loaded | None, days: float, key: _StampKey | None) -> bool:
        if loaded is None or loaded[1] != days or key != loaded[0]:
            return True
        return None in loaded[2] and time.monotonic() - loaded[3] >= _UNRESOLVED_SECONDS

    def refresh(self, days: float) -> None:
        """Read the set again if the stamp changed (a database read: the lookup threads)."""
        if not self._loading.acquire(blocking=False):
            return  # another thread is reading it
        try:
            key = self._key()  # before the read: a commit after it changes the stamp again
            if key is None or not self._stale(self._loaded, days, key):
                return
            read_at = time.monotonic()
            self._loaded = (key, days, overriding_patients(self._engine, days), read_at)
        except SQLAlchemyError as exc:  # every open keeps reading the database meanwhile
            log.warning("snooze index not read: %s", type(exc).__name__)
        finally:
            self._loading.release()

    def changed(self) -> None:
        """After feedback is committed: every process's set is out of date."""
        self._loaded = None
        try:
            with open(self._stamp, "ab") as stamp:
                if stamp.tell() >= _STAMP_MAX_BYTES:
                    stamp.truncate(0)
                stamp.write(b".")
        except OSError as exc:
            # Other processes keep their set until the next stamp: their next opens may show
            # a card this feedback snoozes (never hide one). Said loudly, as it is a change.
            log.error("snooze index stamp not written (%s)", type(exc).__name__)
