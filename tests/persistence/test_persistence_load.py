"""Concurrency and faults through the HTTP app: nothing acknowledged is lost or doubled."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import migrate_url
from flask import Flask
from persistence_helpers import audit_entry, feedback, libpq_dsn
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from cds_service import create_app
from cds_service.persistence import Store
from cds_service.persistence.db import SQLITE_FILENAME

PV = "myopathy-patient-view"
THREADS, POSTS = 20, 250
OWN = 200  # each thread's own items; its other 50 posts repeat a neighbour's items
LOCK_WAIT = 1.0  # seconds a write waits for the database before giving up
RESULTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def store_of(app: Flask) -> Store:
    store: Store = app.extensions["cds_store"]
    return store


def stored_keys(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT card_uuid, reason_code FROM feedback")).all()
    return [(str(card), str(reason)) for card, reason in rows]


def test_concurrent_feedback_posts_are_stored_exactly_once(app: Flask, backend: str) -> None:
    store = store_of(app)
    items = [
        [feedback(str(uuid.uuid4()), reason=f"t{t}-{j}") for j in range(OWN)]
        for t in range(THREADS)
    ]
    # Half the cards were issued (audited), half are unknown to the service.
    for t in range(0, THREADS, 2):
        store.submit_audit(audit_entry(*((item["card"], "IS-2") for item in items[t])))
    assert store.flush()
    plans = [_plan(items[t], items[(t + 1) % THREADS]) for t in range(THREADS)]
    statuses: list[int] = []
    stored_counts: list[int] = []
    lock = threading.Lock()

    def worker(plan: list[dict[str, Any]]) -> None:
        client = app.test_client()
        for item in plan:
            response = client.post(f"/cds-services/{PV}/feedback", json={"feedback": [item]})
            with lock:
                statuses.append(response.status_code)
                if response.status_code == 200:
                    stored_counts.append(response.get_json()["stored"])

    threads = [threading.Thread(target=worker, args=(plan,)) for plan in plans]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    assert len(statuses) == THREADS * POSTS
    assert set(statuses) == {200}
    assert sum(stored_counts) == THREADS * OWN  # each item written by exactly one post
    keys = stored_keys(store)
    expected = {
        (item["card"], item["overrideReason"]["reason"]["code"]) for row in items for item in row
    }
    assert len(keys) == len(set(keys)) == THREADS * OWN
    assert set(keys) == expected
    with store.engine.connect() as conn:
        unknown = conn.execute(
            text("SELECT count(*) FROM feedback WHERE card_known = false")
        ).scalar()
    assert unknown == THREADS * OWN // 2
    _record(f"{backend}: {THREADS * POSTS} feedback posts ({THREADS} threads) in {elapsed:.2f} s")


def _plan(own: list[dict[str, Any]], neighbour: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """200 own items with 50 of the neighbour's interleaved: identical posts racing."""
    plan: list[dict[str, Any]] = []
    for j, item in enumerate(own):
        plan.append(item)
        if j % 4 == 0:
            plan.append(neighbour[j])
    assert len(plan) == POSTS
    return plan


def _record(line: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / "persistence-load.txt").open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


@contextmanager
def postgres_down(database_url: str, admin_url: str) -> Iterator[None]:
    """The database refuses every connection and its sessions are killed: as if stopped."""
    name = make_url(database_url).database
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@contextmanager
def sqlite_locked(data_dir: str) -> Iterator[None]:
    """Another process holds the SQLite write lock (a backup, an admin's sqlite3 shell)."""
    path = os.path.join(data_dir, SQLITE_FILENAME)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({path!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
            "c.execute('ROLLBACK')\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    try:
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        holder.stdout.close()


def test_database_outage_gives_503_keeps_hooks_and_loses_nothing(
    settings: dict[str, Any], backend: str, request: pytest.FixtureRequest
) -> None:
    if settings["DATABASE_URL"]:
        migrate_url(settings["DATABASE_URL"], settings["DATA_DIR"])
        admin = libpq_dsn(request.getfixturevalue("postgres_admin_url"))
        outage: Callable[[], Any] = lambda: postgres_down(settings["DATABASE_URL"], admin)  # noqa: E731
    else:
        outage = lambda: sqlite_locked(settings["DATA_DIR"])  # noqa: E731
    app = create_app({**settings, "AUTH": "disabled", "DATABASE_TIMEOUT_SECONDS": LOCK_WAIT})
    store = store_of(app)
    store.audit.max_backoff = 0.2
    client = app.test_client()
    url = f"/cds-services/{PV}/feedback"
    acknowledged: set[str] = set()
    stop = threading.Event()

    def steady_client() -> None:
        """An EHR posting feedback throughout, retrying each item until it gets a 200."""
        own = app.test_client()
        while not stop.is_set():
            item = feedback(str(uuid.uuid4()))
            while own.post(url, json={"feedback": [item]}).status_code != 200:
                time.sleep(0.05)
            acknowledged.add(item["card"])

    try:
        before = [feedback(str(uuid.uuid4())) for _ in range(20)]
        for item in before:
            assert client.post(url, json={"feedback": [item]}).status_code == 200
        background = threading.Thread(target=steady_client)
        background.start()
        time.sleep(0.3)
        during = [feedback(str(uuid.uuid4())) for _ in range(4)]
        with outage():
            for item in during:
                response = client.post(url, json={"feedback": [item]})
                assert response.status_code == 503
                assert response.get_json()["error"]["code"] == "service_unavailable"
            hook_instances = []
            for _ in range(3):
                body = _hook_request()
                started = time.perf_counter()
                response = client.post(f"/cds-services/{PV}", json=body)
                # The audit write waits off the request path: no lock wait in the answer.
                assert time.perf_counter() - started < LOCK_WAIT * 0.8
                assert response.status_code == 200  # advice still given
                assert "cards" in response.get_json()
                hook_instances.append(body["hookInstance"])
            deadline = time.monotonic() + 10
            while store.audit.stats.write_errors == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.audit.stats.write_errors > 0  # counted, and retried later
        for item in during + before[:5]:  # the EHR retries; an old retry stays single
            assert client.post(url, json={"feedback": [item]}).status_code == 200
        time.sleep(0.3)
        stop.set()
        background.join(timeout=30)
        assert store.flush(timeout=15)
        cards = [card for card, _ in stored_keys(store)]
        assert len(cards) == len(set(cards))
        expected = {i["card"] for i in before + during} | acknowledged
        assert set(cards) == expected
        assert len(acknowledged) > 0
        with store.engine.connect() as conn:
            audited = set(conn.execute(text("SELECT hook_instance FROM audit_hook_call")).scalars())
        assert set(hook_instances) <= audited  # written once the database came back
        assert store.audit.stats.dropped == 0
    finally:
        stop.set()
        store.close()


def _hook_request() -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p-outage"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p-outage"},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []},
        },
    }


def test_sqlite_full_gives_503_keeps_hooks_and_recovers(tmp_path: Path) -> None:
    """SQLite's max_page_count gives the same SQLITE_FULL a full disk gives, file untouched."""
    app = create_app({"AUTH": "disabled", "DATA_DIR": str(tmp_path / "data")})
    store = store_of(app)
    store.audit.max_backoff = 0.2
    client = app.test_client()

    def no_growth(dbapi_connection: Any, _record: Any) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    big = feedback(str(uuid.uuid4()), comment="x" * 200_000)  # needs new pages
    url = f"/cds-services/{PV}/feedback"
    try:
        event.listen(store.engine, "connect", no_growth)
        store.engine.dispose()  # every new connection carries the limit
        full = client.post(url, json={"feedback": [big]})
        assert full.status_code == 503
        assert full.get_json()["error"]["code"] == "service_unavailable"
        assert client.post(f"/cds-services/{PV}", json=_hook_request()).status_code == 200
        event.remove(store.engine, "connect", no_growth)
        store.engine.dispose()  # space again
        assert client.post(url, json={"feedback": [big]}).get_json() == {
            "stored": 1,
            "unknownCards": [big["card"]],
        }
        assert store.flush(timeout=15)
        assert len(stored_keys(store)) == 1
    finally:
        store.close()
