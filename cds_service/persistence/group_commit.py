"""Group commit for SQLite: concurrent feedback requests share one transaction and one fsync."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cds_service.persistence.db import write_transaction

T = TypeVar("T")


class _Pending(Generic[T]):
    def __init__(self, work: Callable[[Connection], T]) -> None:
        self.work = work
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit:
    """Whoever finds no transaction running commits everything queued so far, in one go.

    With synchronous=FULL each SQLite commit costs an fsync (milliseconds); while one runs,
    the requests that arrive queue up and the next commit carries them all. Each request's
    work runs in its own savepoint, so one refused request does not sink the others, and no
    request is answered before the commit holding its rows has returned.
    """

    def __init__(self, engine: Engine, queue_timeout: float) -> None:
        self._engine = engine
        self._timeout = queue_timeout
        self._cond = threading.Condition()
        self._pending: list[_Pending[Any]] = []
        self._leading = False

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a committed transaction shared with concurrent callers."""
        mine: _Pending[T] = _Pending(work)
        deadline = time.monotonic() + self._timeout
        with self._cond:
            self._pending.append(mine)
            while not mine.done:
                if not self._leading:
                    self._leading = True
                    batch, self._pending = self._pending, []
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0 and mine in self._pending:
                    # Not yet taken into a transaction: safe to give up (nothing written).
                    self._pending.remove(mine)
                    raise PoolTimeout("waited too long for the SQLite group commit")
                self._cond.wait(max(remaining, 0.05))
            else:
                return mine.outcome()
        try:
            self._commit(batch)
        finally:
            with self._cond:
                self._leading = False
                for pending in batch:
                    pending.done = True
                self._cond.notify_all()
        return mine.outcome()

    def _commit(self, batch: list[_Pending[Any]]) -> None:
        try:
            with write_transaction(self._engine) as conn:
                for pending in batch:
                    try:
                        with conn.begin_nested():
                            pending.result = pending.work(conn)
                    except Exception as exc:
                        pending.error = exc
        except Exception as exc:
            # The commit itself failed: nothing of this batch is stored.
            for pending in batch:
                pending.error = exc
