"""Shared pytest fixtures: `app` and `client` (auth off unless a test turns it on)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
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


@dataclass
class LazyDecodes:
    """What fhir_mappings.lazy decodes, as it happens: typed search Bundles and entry lists,
    light passes, and the list[Raw] scans that count entries."""

    typed: list[Any] = field(default_factory=list)
    light: list[Any] = field(default_factory=list)
    scans: list[Any] = field(default_factory=list)


@pytest.fixture
def lazy_decodes(monkeypatch: pytest.MonkeyPatch) -> LazyDecodes:
    from fhir_mappings import lazy

    seen = LazyDecodes()
    real_decoder, real_decode, real_top = lazy.decoder, msgspec.json.decode, lazy._TOP

    class Counted:
        def __init__(self, shape: Any, real: Any, into: list[Any]) -> None:
            self.shape, self.real, self.into = shape, real, into

        def decode(self, data: Any) -> Any:
            self.into.append(self.shape)
            return self.real.decode(data)

    def decode(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("type") == list[msgspec.Raw]:
            seen.scans.append(args[0])
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(lazy, "decoder", lambda s: Counted(s, real_decoder(s), seen.typed))
    monkeypatch.setattr(lazy, "_TOP", Counted("top", real_top, seen.light))
    monkeypatch.setattr(msgspec.json, "decode", decode)
    return seen
