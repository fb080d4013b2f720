"""On PostgreSQL, 100,000 feedback items are not a 503 "retry later" forever.

A database of this test's own; the schema migrated by `cds-service db upgrade`, as operators do.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.adversarial.support import PATIENT_VIEW, Served, request, serve

FEEDBACK = f"/cds-services/{PATIENT_VIEW}/feedback"
ADMIN = os.environ.get("CDS_TEST_POSTGRES_URL", "")
pytestmark = pytest.mark.skipif(not ADMIN, reason="CDS_TEST_POSTGRES_URL is not set")


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"cds_adv_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env |= {"CDS_DATABASE_URL": database, "CDS_DATA_DIR": str(tmp / "data")}
    subprocess.run(
        [sys.executable, "-m", "cds_service", "db", "upgrade"], env=env, check=True, timeout=120
    )
    with serve(tmp, {"CDS_DATABASE_URL": database}) as running:
        yield running


def _items(count: int) -> list[dict[str, Any]]:
    return [
        {
            "card": str(uuid.uuid4()),
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-25T10:00:00Z",
        }
        for _ in range(count)
    ]


def test_100000_items_are_a_413_at_once(served: Served) -> None:
    started = time.monotonic()
    status, _, body = request(
        served.url(FEEDBACK),
        {"feedback": _items(100_000)},
        headers=served.auth(FEEDBACK),
        timeout=60,
    )
    assert status == 413, body
    assert time.monotonic() - started < 10


def test_the_most_items_allowed_are_stored(served: Served) -> None:
    status, _, body = request(
        served.url(FEEDBACK), {"feedback": _items(1000)}, headers=served.auth(FEEDBACK), timeout=60
    )
    assert status == 200, body
