"""SQLite group commit: shared transaction, per-request savepoints, bounded queueing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from persistence_helpers import table_count
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cds_service.persistence import migrate
from cds_service.persistence.db import _SQLITE_WRITE_LOCKS, make_engine, resolve_url
from cds_service.persistence.group_commit import GroupCommit


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(resolve_url("", str(tmp_path)), timeout_seconds=2.0)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def insert_secret(name: str) -> Any:
    def work(conn: Connection) -> str:
        conn.execute(
            text("INSERT INTO service_secret (name, value, created_at) VALUES (:n, 'v', :t)"),
            {"n": name, "t": "2026-11-25 10:00:00.000000"},
        )
        return name

    return work


def refuse(conn: Connection) -> str:
    raise ValueError("this request's content is refused")


def test_queued_requests_share_one_commit_and_a_failure_stays_local(
    sqlite_engine: Engine,
) -> None:
    group = GroupCommit(sqlite_engine, queue_timeout=5.0)
    write_lock = _SQLITE_WRITE_LOCKS[sqlite_engine][0]
    results: dict[str, Any] = {}

    def call(name: str, work: Any) -> None:
        try:
            results[name] = group.run(work)
        except Exception as exc:
            results[name] = exc

    write_lock.acquire()  # the first leader blocks inside its transaction; others queue
    first = threading.Thread(target=call, args=("first", insert_secret("first")))
    first.start()
    time.sleep(0.1)
    queued = [
        threading.Thread(target=call, args=(f"q{i}", insert_secret(f"q{i}"))) for i in range(5)
    ]
    queued.append(threading.Thread(target=call, args=("bad", refuse)))
    for thread in queued:
        thread.start()
    time.sleep(0.2)
    assert results == {}  # nobody is answered before the commit holding their rows
    write_lock.release()
    for thread in [first, *queued]:
        thread.join(timeout=10)
    assert isinstance(results.pop("bad"), ValueError)
    assert results == {name: name for name in ["first", *(f"q{i}" for i in range(5))]}
    assert table_count(sqlite_engine, "service_secret") == 6


def test_a_request_queued_too_long_gives_up_without_writing(sqlite_engine: Engine) -> None:
    group = GroupCommit(sqlite_engine, queue_timeout=0.3)
    write_lock = _SQLITE_WRITE_LOCKS[sqlite_engine][0]
    outcome: dict[str, Any] = {}

    def leader() -> None:
        try:
            outcome["leader"] = group.run(insert_secret("leader"))
        except Exception as exc:
            outcome["leader"] = exc

    write_lock.acquire()
    thread = threading.Thread(target=leader)
    thread.start()
    time.sleep(0.1)
    with pytest.raises(PoolTimeout):
        group.run(insert_secret("late"))
    write_lock.release()
    thread.join(timeout=10)
    # The leader's own wait for the write lock (2 s) outlasted the hold: it committed.
    assert outcome["leader"] == "leader"
    with sqlite_engine.connect() as conn:
        names = set(conn.execute(text("SELECT name FROM service_secret")).scalars())
    assert names == {"leader"}
