"""/readyz: database and Redis checked with a short timeout; 503 when one is down."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from cds_service.ops import register_check
from tests.conftest import make_app
from tests.ops_support import Relay, free_port


def ready(client: FlaskClient) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = client.get("/readyz")
    return response.status_code, response.get_json(), time.monotonic() - started


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in body["checks"]}


def test_ready_lists_each_check(client: FlaskClient) -> None:
    status, body, _ = ready(client)
    assert status == 200 and body["status"] == "ready"
    assert set(by_name(body)) == {"knowledge", "database"}
    assert all(c["status"] == "ok" for c in body["checks"])
    assert "error" not in body


def test_a_registered_check_that_fails_makes_it_503(app: Flask) -> None:
    def broken() -> None:
        raise ConnectionError("http://user:secret@internal/")

    register_check(app, "ehr-link", broken)
    status, body, _ = ready(app.test_client())
    assert status == 503 and body["status"] == "not_ready"
    assert by_name(body)["ehr-link"] == {
        "name": "ehr-link",
        "status": "failed",
        "error": "ConnectionError",
    }
    assert body["error"]["code"] == "not_ready" and "ehr-link" in body["error"]["message"]
    assert "secret" not in str(body)


def test_a_check_that_hangs_is_cut_at_the_timeout(tmp_path: Path) -> None:
    app = make_app(tmp_path, READY_TIMEOUT_SECONDS=0.2)
    register_check(app, "slow", lambda: time.sleep(2))
    status, body, took = ready(app.test_client())
    assert status == 503 and by_name(body)["slow"]["error"] == "no answer within 0.2 s"
    assert took < 1.5


def test_healthz_stays_a_liveness_probe(app: Flask) -> None:
    register_check(app, "down", lambda: (_ for _ in ()).throw(OSError()))
    assert app.test_client().get("/healthz").status_code == 200


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, on a free port, stopped by its PID."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.1)
    try:
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        process.kill()
        process.wait(timeout=10)


def test_redis_down_makes_it_503_within_the_timeout(
    tmp_path: Path, own_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, process = own_redis
    app = make_app(tmp_path, REDIS_URL=url, READY_TIMEOUT_SECONDS=0.5)
    client = app.test_client()
    status, body, _ = ready(client)
    assert status == 200 and by_name(body)["redis"]["status"] == "ok"
    process.kill()
    process.wait(timeout=10)
    status, body, took = ready(client)
    assert status == 503
    assert by_name(body)["redis"]["status"] == "failed"
    assert by_name(body)["database"]["status"] == "ok"
    assert took < 2.0


@pytest.mark.postgres
def test_database_stopped_makes_it_503_within_the_timeout(tmp_path: Path) -> None:
    admin = os.environ.get("CDS_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("CDS_TEST_POSTGRES_URL is not set")
    import psycopg

    from cds_service.persistence.db import make_engine, resolve_url
    from cds_service.persistence.migrate import upgrade

    name = f"cds_ready_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    try:
        through = url.set(host="127.0.0.1", port=relay.port)
        database_url = through.render_as_string(hide_password=False)
        engine = make_engine(resolve_url(database_url, str(tmp_path)))
        upgrade(engine)
        engine.dispose()
        app = make_app(tmp_path, DATABASE_URL=database_url, READY_TIMEOUT_SECONDS=0.5)
        client = app.test_client()
        status, body, _ = ready(client)
        assert status == 200 and by_name(body)["database"]["status"] == "ok"
        relay.cut()  # the database is gone, as the app sees it
        status, body, took = ready(client)
        assert status == 503 and by_name(body)["database"]["status"] == "failed"
        assert took < 2.0
        app.extensions["cds_store"].close()
    finally:
        relay.cut()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
