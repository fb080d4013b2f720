"""The README and docs/ stay inside the repository: links resolve, nothing outside is cited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    for target in _LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        path = (doc.parent / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{doc.name}: {target}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_no_document_cites_outside_paths_or_issue_numbers(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert not re.findall(r"\.\./shared|\bshared/[a-z]|/work/", text), doc.name
    assert not re.findall(r"\bissues? #?\d", text, flags=re.IGNORECASE), doc.name


def test_the_readme_is_short_and_the_docs_exist() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 120
    names = {d.name for d in DOCS}
    assert {"architecture.md", "configuration.md", "security.md", "persistence.md"} <= names
    assert {"fhir-mappings.md", "guideline.md", "operations.md", "performance.md"} <= names
