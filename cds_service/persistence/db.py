"""Engines: embedded SQLite under DATA_DIR by default, PostgreSQL (psycopg 3) by URL."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Engine, Select, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cds_service.errors import ConfigError

SQLITE_FILENAME = "cds-service.sqlite3"
POOL_WAIT_SECONDS = 15.0

# SQLite lets one writer in at a time and makes the others poll with growing sleeps, which
# starves some threads under load; within a process, writers queue on a lock instead.
_SQLITE_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, tuple[threading.Lock, float]] = (
    weakref.WeakKeyDictionary()
)


def resolve_url(database_url: str, data_dir: str) -> str:
    """Map the DATABASE_URL setting to a SQLAlchemy URL; empty means SQLite under DATA_DIR."""
    if not database_url:
        directory = Path(data_dir).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{directory / SQLITE_FILENAME}"
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    try:
        url = make_url(database_url)
    except Exception as exc:
        raise ConfigError("CDS_DATABASE_URL is not a database URL") from exc
    if url.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise ConfigError(
            f"CDS_DATABASE_URL: driver {url.drivername!r} is not supported "
            "(use postgresql:// or sqlite:///path)"
        )
    return database_url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, timeout_seconds: float = 5.0, pool_size: int = 5) -> Engine:
    """Create the engine with the connection settings each dialect needs to lose nothing."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, timeout_seconds, pool_size)
    connect_args: dict[str, Any] = {
        "connect_timeout": max(1, round(timeout_seconds)),
        # A statement stuck behind a lock fails instead of hanging the request.
        "options": f"-c statement_timeout={int(timeout_seconds * 1000)}",
    }
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=3 * pool_size,
        # The pool's wait is not first-come-first-served: under a burst a thread can lose the
        # race for a free connection several times, so it gets longer than one statement.
        pool_timeout=POOL_WAIT_SECONDS,
        # After a database restart the pool holds dead connections: test before use.
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def _sqlite_engine(url: str, timeout_seconds: float, pool_size: int) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=3 * pool_size,
        pool_timeout=POOL_WAIT_SECONDS,
        connect_args={"timeout": timeout_seconds, "check_same_thread": False},
    )
    busy_ms = int(timeout_seconds * 1000)
    _SQLITE_WRITE_LOCKS[engine] = (threading.Lock(), timeout_seconds)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the 200 goes out, even across a power cut.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes
        # fails at once with SQLITE_BUSY under concurrency instead of waiting busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A committed-on-exit transaction; on SQLite, writers of this process take turns."""
    entry = _SQLITE_WRITE_LOCKS.get(engine)
    if entry is None:
        with engine.begin() as conn:
            yield conn
        return
    lock, timeout = entry
    if not lock.acquire(timeout=timeout):
        raise PoolTimeout("waited too long for the SQLite write lock")
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        lock.release()


class PreparedRead:
    """A SELECT built once and run on every hook call (the snooze lookup).

    On SQLite it runs on the pooled driver connection as one statement outside a transaction
    (one WAL snapshot, no writer waited for): SQLAlchemy's execution path cost several times
    SQLite's own work for such a small indexed read. Elsewhere, an ordinary execute.
    """

    def __init__(self, statement: Select[*tuple[Any, ...]] | CompoundSelect) -> None:
        self.statement = statement
        self._sqlite: tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any]] | None = None

    def rows(self, engine: Engine, params: dict[str, Any]) -> list[Any]:
        if not is_sqlite(engine):
            with engine.connect() as conn:
                return list(conn.execute(self.statement, params).all())
        sql, names, defaults, processors = self._sqlite or self._compile(engine)
        values = {**defaults, **params}
        args = [processors[n](values[n]) if n in processors else values[n] for n in names]
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                return list(cursor.execute(sql, args).fetchall())
            finally:
                cursor.close()
        except engine.dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy would raise it: callers handle SQLAlchemyError only.
            raise OperationalError(sql, args, exc) from exc
        finally:
            connection.close()

    def _compile(
        self, engine: Engine
    ) -> tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any]]:
        compiled = self.statement.compile(dialect=engine.dialect)
        binds = compiled.binds
        processors = {
            name: processor
            for name, bind in binds.items()
            if (processor := bind.type.bind_processor(engine.dialect)) is not None
        }
        defaults = {name: bind.value for name, bind in binds.items()}
        self._sqlite = (compiled.string, tuple(compiled.positiontup or ()), defaults, processors)
        return self._sqlite
