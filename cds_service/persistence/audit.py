"""Hook-call audit trail, written off the request path by a bounded queue and one thread."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cds_service.persistence.db import write_transaction
from cds_service.persistence.ledger import AuditLedger
from cds_service.persistence.models import HookCall, IssuedCard

log = logging.getLogger(__name__)

# Failures of the database rather than of the data: worth retrying the same batch.
TRANSIENT = (OperationalError, InterfaceError, PoolTimeout)


# Statements built once: constructing them per batch cost more CPU than executing them.
_INSERT_CALL = insert(HookCall)
_INSERT_CALLS_RETURNING_IDS = insert(HookCall).returning(
    HookCall.c.id, sort_by_parameter_order=True
)
_INSERT_CARD = insert(IssuedCard)
_MAX_CALL_ID = select(func.coalesce(func.max(HookCall.c.id), 0))


@dataclass(frozen=True)
class CardEntry:
    """What the audit keeps of a card: its uuid, indicator, recommendation ids and problems."""

    uuid: str | None
    indicator: str
    recommendation_ids: tuple[str, ...] = ()
    problems: tuple[str | None, ...] = ()  # aligned with recommendation_ids
    # "active": returned to the client; "silent": would have fired, never returned.
    mode: str = "active"


@dataclass(frozen=True)
class AuditEntry:
    """One hook call, already pseudonymised (patient_hash, never the patient id)."""

    hook_instance: str
    service_id: str
    hook: str
    started_at: datetime
    duration_ms: float
    patient_hash: str | None
    knowledge_version: str | None
    missing_inputs: dict[str, str] = field(default_factory=dict)
    cards: tuple[CardEntry, ...] = ()


def write_entries(engine: Engine, entries: Sequence[AuditEntry]) -> None:
    """Write a batch of hook calls and their cards in one transaction, in a few statements."""
    if not entries:
        return
    with write_transaction(engine) as conn:
        call_ids = _insert_calls(conn, [_call_row(entry) for entry in entries])
        card_rows = [
            row
            for entry, call_id in zip(entries, call_ids, strict=True)
            for row in _card_rows(entry, call_id)
        ]
        if card_rows:
            conn.execute(_INSERT_CARD, card_rows)


def _insert_calls(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the hook calls in one statement; their ids, in the order of `rows`."""
    if conn.dialect.name == "sqlite":
        # SQLite does not tie RETURNING rows to VALUES rows, so SQLAlchemy would send one INSERT
        # per row. This transaction holds the write lock (BEGIN IMMEDIATE): the ids after the
        # current maximum, which SQLite would assign itself, are ours; the key refuses a clash.
        first = conn.execute(_MAX_CALL_ID).scalar_one() + 1
        ids = list(range(first, first + len(rows)))
        conn.execute(_INSERT_CALL, [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
        return ids
    # PostgreSQL: one multi-row INSERT whose RETURNING SQLAlchemy sorts into parameter order.
    return list(conn.execute(_INSERT_CALLS_RETURNING_IDS, rows).scalars())


def _call_row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "hook_instance": entry.hook_instance,
        "service_id": entry.service_id,
        "hook": entry.hook,
        "started_at": entry.started_at,
        "duration_ms": entry.duration_ms,
        "patient_hash": entry.patient_hash,
        "knowledge_version": entry.knowledge_version,
        "missing_inputs": dict(entry.missing_inputs),
        "card_count": sum(1 for card in entry.cards if card.mode == "active"),
    }


def _card_rows(entry: AuditEntry, call_id: int) -> list[dict[str, Any]]:
    """One row per (card, recommendation id); a card without one gets a single NULL row."""
    return [
        {
            "hook_call_id": call_id,
            "card_uuid": card.uuid,
            "service_id": entry.service_id,
            "recommendation_id": rec_id,
            "problem": problem,
            "indicator": card.indicator,
            "issued_at": entry.started_at,
            "mode": card.mode,
        }
        for card in entry.cards
        for rec_id, problem in _pairs(card)
    ]


def _pairs(card: CardEntry) -> list[tuple[str | None, str | None]]:
    """(recommendation id, problem) per row; a card without an id gets one NULL row."""
    if not card.recommendation_ids:
        return [(None, None)]
    problems = list(card.problems) + [None] * len(card.recommendation_ids)
    return list(zip(card.recommendation_ids, problems, strict=False))


@dataclass
class AuditStats:
    """Counters an operator watches: records written, failed write attempts, records dropped."""

    written: int = 0
    write_errors: int = 0
    dropped: int = 0
    # Queued by earlier processes that ended without writing them (persistence.ledger).
    lost_before_start: int = 0


class AuditWriter:
    """Bounded queue drained by a daemon thread; a failed batch is retried with back-off."""

    def __init__(
        self,
        engine: Engine,
        *,
        capacity: int = 10_000,
        batch_size: int = 200,
        max_backoff_seconds: float = 5.0,
        linger_seconds: float = 0.05,
        ledger: AuditLedger | None = None,
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        # Bounded by counting in-flight entries (queued or being written), not by the Queue.
        self._capacity = capacity
        self._queue: queue.Queue[AuditEntry | None] = queue.Queue()
        self._batch_size = batch_size
        self.max_backoff = max_backoff_seconds
        self._linger = linger_seconds
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        # Entries queued so far and entries written or given up, in queue order: a caller
        # can wait for what was queued before it (wait_for), without waiting for later work.
        self._queued = 0
        self._finished = 0
        self._closing = threading.Event()
        # Set by flush(): whoever waits for the queue to drain cuts the batch's linger short.
        self._hurry = threading.Event()
        self.stats = AuditStats()
        self._thread = threading.Thread(target=self._run, name="cds-audit-writer", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Records queued or being written (a gauge for operators)."""
        return self._in_flight

    def submit(self, entry: AuditEntry) -> None:
        """Queue an entry without blocking the request; when full, drop and count it."""
        if self._closing.is_set():
            self._count_drop(1)
            return
        with self._lock:
            if self._in_flight >= self._capacity:
                self.stats.dropped += 1
                log.error("audit queue full: record dropped (total %d)", self.stats.dropped)
                return
            self._in_flight += 1
            self._queued += 1
            if self._ledger is not None:
                self._ledger.take()
            self._queue.put_nowait(entry)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted entry is written or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._hurry.set()
                self._idle.wait(remaining)
        return True

    def wait_for_queued(self, timeout: float) -> bool:
        """Wait until the entries queued before this call are written or given up (not the
        ones queued later); False on timeout. Feedback uses it so that the card it answers
        is in the audit before the feedback is (the snooze lookup joins the two)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            target = self._queued
            while self._finished < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._hurry.set()
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued (shutdown), then stop the thread."""
        if self._closing.is_set():
            return
        flushed = self.flush(timeout)
        self._closing.set()
        self._queue.put_nowait(None)
        self._thread.join(timeout=1.0)
        if flushed and self._ledger is not None:
            self._ledger.close()  # else its file stays: the next start counts what was lost

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._write_with_retry(batch)
            self._done(len(batch))

    def _write_with_retry(self, batch: list[AuditEntry]) -> None:
        backoff = 0.05
        while True:
            try:
                write_entries(self._engine, batch)
            except TRANSIENT as exc:
                self._count_error(exc)
                if self._closing.is_set():
                    self._count_drop(len(batch))
                    return
                # Database down or locked: keep the batch and try again; new entries wait
                # in the bounded queue meanwhile.
                self._closing.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except Exception as exc:
                # Refused content (or a bug): never let the writer thread die over it.
                self._count_error(exc)
                self._write_one_by_one(batch)
                return
            with self._lock:
                self.stats.written += len(batch)
            return

    def _write_one_by_one(self, batch: list[AuditEntry]) -> None:
        """A batch the database refuses for its content: keep the good rows, drop the bad."""
        for entry in batch:
            try:
                write_entries(self._engine, [entry])
            except Exception as exc:
                self._count_error(exc)
                self._count_drop(1)
            else:
                with self._lock:
                    self.stats.written += 1

    def _count_error(self, exc: BaseException) -> None:
        with self._lock:
            self.stats.write_errors += 1
        # The class names the failure; the message could quote row values, so it stays out.
        log.error("audit write failed: %s", type(exc).__name__)

    def _next_batch(self) -> list[AuditEntry] | None:
        first = self._queue.get()  # blocks: an idle writer costs no CPU
        if first is None:
            return None
        if self._linger > 0:
            # A transaction costs ~0.5 ms of CPU however few rows it carries: under load,
            # waiting a moment lets one commit carry the calls of the next few requests.
            self._hurry.wait(self._linger)
            self._hurry.clear()
        batch = [first]
        while len(batch) < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put_nowait(None)  # let the loop see the stop after this batch
                break
            batch.append(item)
        return batch

    def _count_drop(self, count: int) -> None:
        with self._lock:
            self.stats.dropped += count
        log.error("audit records dropped: %d (total %d)", count, self.stats.dropped)

    def _done(self, count: int) -> None:
        with self._idle:
            self._in_flight -= count
            self._finished += count
            if self._ledger is not None:
                self._ledger.settle(count)
            self._idle.notify_all()
