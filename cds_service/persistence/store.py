"""The store the app uses: engine, schema check, feedback, audit writer, report, retention."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import (
    DataError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cds_service.errors import ConfigError, InvalidRequest, ServiceUnavailable, StorageFailed
from cds_service.model.events import card_recommendations
from cds_service.persistence import migrate
from cds_service.persistence.audit import AuditEntry, AuditWriter, CardEntry
from cds_service.persistence.db import is_sqlite, make_engine, resolve_url
from cds_service.persistence.feedback import (
    FeedbackItem,
    FeedbackResult,
    item_from_wire,
    record_feedback,
    store_items,
)
from cds_service.persistence.group_commit import GroupCommit
from cds_service.persistence.hashing import PatientHasher, resolve_key
from cds_service.persistence.ledger import AuditLedger, count_lost
from cds_service.persistence.override_index import OverrideIndex
from cds_service.persistence.report import ReportFilter, override_report
from cds_service.persistence.retention import PurgeResult, purge_audit
from cds_service.persistence.snooze import overridden_problems

log = logging.getLogger(__name__)
# Snooze lookups run beside the hook: the answer waits this long at most, and
# after a failure the lookup rests this long (cards are shown meanwhile).
SNOOZE_BUDGET_SECONDS = 0.25
SNOOZE_BACKOFF_SECONDS = 5.0
FEEDBACK_AUDIT_WAIT_SECONDS = 0.2


class SchemaOutOfDate(ConfigError):
    """The database schema is not the one this code needs: run `cds-service db upgrade`."""

    code = "schema_out_of_date"


def open_engine(settings: Mapping[str, Any]) -> Engine:
    """The engine the settings name: CDS_DATABASE_URL, else SQLite under DATA_DIR."""
    url = resolve_url(settings.get("DATABASE_URL") or "", settings.get("DATA_DIR") or "data")
    return make_engine(
        url,
        timeout_seconds=float(settings.get("DATABASE_TIMEOUT_SECONDS", 5.0)),
        pool_size=int(settings.get("DATABASE_POOL_SIZE", 5)),
    )


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Start-up check: upgrade SQLite in place when allowed, else refuse a schema behind."""
    try:
        state = migrate.schema_state(engine)
        if state.up_to_date:
            return
        if not set(state.current) <= migrate.known_revisions():
            raise SchemaOutOfDate(
                f"database schema is newer than this code ({state.describe}): "
                "deploy the matching release"
            )
        if auto_upgrade:
            log.info("database schema: %s; upgrading", state.describe)
            migrate.upgrade(engine)
            return
    except SQLAlchemyError as exc:
        raise ConfigError(
            f"cannot reach the database ({type(exc).__name__}); check CDS_DATABASE_URL"
        ) from None
    raise SchemaOutOfDate(
        f"database schema out of date ({state.describe}): run `cds-service db upgrade`"
    )


def is_transient(exc: SQLAlchemyError) -> bool:
    """Whether the database may succeed on a retry (unreachable, timed out, connection lost)."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return True
    return bool(getattr(exc, "connection_invalidated", False))


class Store:
    """Feedback and audit persistence behind one object (`app.extensions["cds_store"]`)."""

    def __init__(
        self,
        engine: Engine,
        hasher: PatientHasher,
        *,
        queue_size: int = 10_000,
        timeout_seconds: float = 5.0,
        ledger_dir: Path | None = None,
    ) -> None:
        self.engine = engine
        self.hasher = hasher
        lost = count_lost(ledger_dir) if ledger_dir is not None else 0
        ledger = AuditLedger(ledger_dir) if ledger_dir is not None else None
        self.audit = AuditWriter(engine, capacity=queue_size, ledger=ledger)
        self.audit.stats.lost_before_start = lost
        # PostgreSQL groups concurrent commits itself; SQLite needs it done here.
        # A request still queued may give up safely (nothing written); allow a few turns.
        self._group = GroupCommit(engine, 3 * timeout_seconds) if is_sqlite(engine) else None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._snooze_off_until = 0.0
        self._overrides = OverrideIndex.beside(engine)

    @classmethod
    def open(cls, settings: Mapping[str, Any]) -> Store:
        """Engine, schema check (SQLite default upgrades itself), hash key, writer thread."""
        engine = open_engine(settings)
        try:
            ensure_schema(engine, auto_upgrade=is_sqlite(engine))
            key = resolve_key(
                settings.get("AUDIT_HASH_KEY") or "", engine, settings.get("DATA_DIR") or "data"
            )
        except BaseException:
            engine.dispose()
            raise
        return cls(
            engine,
            PatientHasher(key),
            queue_size=int(settings.get("AUDIT_QUEUE_SIZE", 10_000)),
            timeout_seconds=float(settings.get("DATABASE_TIMEOUT_SECONDS", 5.0)),
            ledger_dir=Path(settings.get("DATA_DIR") or "data") / "audit-ledger",
        )

    def record_feedback(
        self, service_id: str, items: Sequence[Mapping[str, Any] | FeedbackItem]
    ) -> dict[str, Any]:
        """Spec 'Feedback': commit every item, or raise 503 so the client retries."""
        parsed = [i if isinstance(i, FeedbackItem) else item_from_wire(i) for i in items]
        # The cards answered are usually audited already; if still queued, give the writer a
        # moment, so the next chart open sees the override (snooze). Bounded: never a reason
        # to refuse or delay feedback for long.
        self.audit.wait_for_queued(FEEDBACK_AUDIT_WAIT_SECONDS)
        try:
            if self._group is None:
                result = record_feedback(self.engine, service_id, parsed)
            else:
                result = self._group.run(lambda conn: store_items(conn, service_id, parsed))
        except DataError:
            # The database refused the content itself: a retry would fail the same way.
            raise InvalidRequest("feedback could not be stored as sent") from None
        except SQLAlchemyError as exc:
            log.error("feedback not stored: %s", type(exc).__name__)
            if not is_transient(exc):
                raise StorageFailed(
                    "feedback could not be stored; retrying will not help"
                ) from None
            raise ServiceUnavailable("feedback could not be stored; retry later") from None
        if self._overrides is not None:
            self._overrides.changed()
        return feedback_body(result)

    def snoozed(self, patient_id: str | None, days: float) -> frozenset[tuple[str, str]]:
        """(recommendation id, problem) overridden with a reason for this patient within
        `days`; empty when off, unknown, or the database cannot answer."""
        patient_hash = self.hasher(patient_id)
        if not patient_hash or days <= 0 or time.monotonic() < self._snooze_off_until:
            return frozenset()
        index = self._overrides
        ruled_out, stale = index.check(patient_hash, days) if index else (False, False)
        if ruled_out:
            return frozenset()  # no override names this patient: no read, no thread hand-off
        pool = self._snooze_pool()
        if index is not None and stale:
            pool.submit(index.refresh, days)  # for the next opens; this one reads as before
        future = pool.submit(overridden_problems, self.engine, patient_hash, days)
        try:
            return future.result(timeout=SNOOZE_BUDGET_SECONDS)
        except (FutureTimeout, SQLAlchemyError) as exc:
            # A snooze that cannot be read in time shows the card: a locked or unreachable
            # database must neither slow the answer nor lose a card. Try again later.
            self._snooze_off_until = time.monotonic() + SNOOZE_BACKOFF_SECONDS
            log.error("snooze lookup failed: %s", type(exc).__name__)
            return frozenset()

    def _snooze_pool(self) -> ThreadPoolExecutor:
        """The lookup threads of this process (a forked worker starts its own)."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cds-snooze")
            self._pool_pid = os.getpid()
        return self._pool

    def submit_audit(self, entry: AuditEntry) -> None:
        self.audit.submit(entry)

    def report(self, flt: ReportFilter) -> dict[str, Any]:
        try:
            return override_report(self.engine, flt)
        except SQLAlchemyError as exc:
            log.error("report failed: %s", type(exc).__name__)
            if not is_transient(exc):
                raise StorageFailed("the report could not be built") from None
            raise ServiceUnavailable("the report database is unavailable") from None

    def purge(self, days: int) -> PurgeResult:
        return purge_audit(self.engine, days)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for queued audit records to be written (tests, shutdown)."""
        return self.audit.flush(timeout)

    def forget_connections(self) -> None:
        """In a forked child: drop the parent's pooled connections without closing them."""
        self.engine.dispose(close=False)

    def close(self) -> None:
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.audit.close()
        self.engine.dispose()


def feedback_body(result: FeedbackResult) -> dict[str, Any]:
    """Response body: counts only, empty fields omitted (CDS Hooks wire rule)."""
    body: dict[str, Any] = {"stored": result.stored}
    if result.duplicates:
        body["duplicates"] = result.duplicates
    if result.unknown_cards:
        body["unknownCards"] = result.unknown_cards
    return body


def card_entries(
    cards: Sequence[Mapping[str, Any]], *, mode: str = "active"
) -> tuple[CardEntry, ...]:
    """Cards as sent (or withheld, mode "silent") -> what the audit keeps (uuid, indicator,
    recommendation ids, problems)."""
    entries = []
    for card in cards:
        pairs = card_recommendations(card)
        entries.append(
            CardEntry(
                uuid=str(card["uuid"]).lower()[:128] if card.get("uuid") else None,
                indicator=str(card.get("indicator") or "info")[:16],
                recommendation_ids=tuple(rec_id[:64] for rec_id, _ in pairs),
                problems=tuple(p[:64] if p else None for _, p in pairs),
                mode=mode,
            )
        )
    return tuple(entries)
