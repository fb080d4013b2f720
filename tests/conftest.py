"""Shared pytest fixtures: `app` and `client` (auth off unless a test turns it on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
# Public third-party test data, copied in with its sources and licences (MANIFEST.md).
THIRDPARTY = ROOT / "tests" / "data" / "thirdparty"


def make_app(tmp_path: Path, **overrides: Any) -> Flask:
    """An app on embedded defaults under a temporary data directory."""
    config: dict[str, Any] = {"AUTH": "disabled", "DATA_DIR": str(tmp_path / "data")}
    config.update(overrides)
    app = create_app(config)
    app.config["TESTING"] = True
    return app


def make_bench_app(tmp_path: Path, **overrides: Any) -> Flask:
    """make_app plus the benchmarks' floor endpoint (when BENCH_FLOOR_ENDPOINT is on)."""
    from benchmarks import floor

    app = make_app(tmp_path, **overrides)
    floor.init_app(app)
    return app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield make_app(tmp_path)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
