"""Packaging hygiene and a self-contained tree."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from cds_service.version import __version__
from tests.conftest import THIRDPARTY

ROOT = Path(__file__).resolve().parents[1]


def tracked_files() -> list[str]:
    result = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    return result.stdout.splitlines()


def test_nothing_refers_outside_the_tree() -> None:
    """The same check as .ci/run: no file reads the shared/ folder CI lays beside the clone."""
    # Spelt in pieces, so that this file does not find itself.
    parent, joined = "../" + "shared", '/ "' + 'shared"'
    offenders = []
    for name in tracked_files():
        path = ROOT / name
        if name == ".ci/run" or not path.is_file() or path.suffix in {".json"}:
            continue
        text = path.read_text("utf-8", errors="ignore")
        if parent in text or joined in text:
            offenders.append(name)
    assert offenders == []


def test_every_bundled_third_party_file_has_a_manifest_line_and_a_notice() -> None:
    manifest = (THIRDPARTY / "MANIFEST.md").read_text("utf-8")
    notice = (ROOT / "NOTICE").read_text("utf-8")
    files = sorted(p.name for p in THIRDPARTY.glob("*.json"))
    assert len(files) >= 13
    for name in files:
        assert f"- {name} |" in manifest, name
        patterns = re.findall(r"^- (\S+\.json)", notice, re.MULTILINE)
        assert any(Path(name).match(p) or name == p for p in patterns), name
    assert "Apache License 2.0" in manifest


def test_licence_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert len(text.splitlines()) > 190


def test_typed_markers_ship_with_the_packages() -> None:
    assert (ROOT / "cds_service" / "py.typed").exists()
    assert (ROOT / "fhir_mappings" / "py.typed").exists()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["*"]


def test_version_is_written_once() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    attr = config["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "cds_service.version.__version__"
    assert importlib.metadata.version("cds-service") == __version__
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text("utf-8")
