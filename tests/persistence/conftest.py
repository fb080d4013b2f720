"""Persistence fixtures: every test runs on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from persistence_helpers import reset_postgres
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from cds_service import create_app
from cds_service.persistence import migrate
from cds_service.persistence.db import make_engine, resolve_url

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _admin_url() -> str:
    url = os.environ.get("CDS_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip("CDS_TEST_POSTGRES_URL is not set (PostgreSQL tests need it)")
    return url


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    return _admin_url()


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str) -> Iterator[str]:
    """A database of this test run's own (cds_test_<random>), dropped at the end."""
    name = f"cds_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:
    """Store settings for the backend; the PostgreSQL database is emptied afterwards."""
    database_url = ""
    if backend == "postgresql":
        database_url = request.getfixturevalue("postgres_database")
        reset_postgres(database_url)
    yield {
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_TIMEOUT_SECONDS": 3.0,
        "AUDIT_HASH_KEY": "",
    }


@pytest.fixture
def engine(settings: dict[str, Any]) -> Iterator[Engine]:
    """A migrated engine for the backend."""
    eng = make_engine(resolve_url(settings["DATABASE_URL"], settings["DATA_DIR"]))
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def migrate_url(database_url: str, data_dir: str) -> None:
    """What an operator runs before starting on PostgreSQL: `cds-service db upgrade`."""
    eng = make_engine(resolve_url(database_url, data_dir))
    migrate.upgrade(eng)
    eng.dispose()


@pytest.fixture
def app(settings: dict[str, Any]) -> Iterator[Flask]:
    """The HTTP app on the backend (auth off: authentication is another suite's concern)."""
    if settings["DATABASE_URL"]:
        migrate_url(settings["DATABASE_URL"], settings["DATA_DIR"])
    application = create_app({"AUTH": "disabled", **settings})
    application.config["TESTING"] = True
    yield application
    application.extensions["cds_store"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
