"""Source says why, not which ticket: no tracked source file or file name cites an issue number.

An issue number means nothing to a newcomer reading the code; the reason itself must be written
down where it matters. docs/ have their own check (tests/test_docs.py); this one covers code,
tests, configuration and the CI script.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".cfg"}
SOURCE_NAMES = {"Makefile", ".ci/run"}
# The word issue followed by a number (with or without a hash or a space), a number in
# parentheses after a hash, or a bare hash-number; not PKCS#8, an HTML entity or a third-party
# manifest's numbered code blocks (the negative cases below).
_CITATION = re.compile(
    r"(?<![a-z])issues?[\s_-]*#?\d|\(#\d+\)|(?<![\w&/])(?<!block )#\d+\b",
    flags=re.IGNORECASE,
)


def cited_issues(text: str) -> list[str]:
    """The issue-number citations in `text`, as found."""
    return [m.group(0) for m in _CITATION.finditer(text)]


def tracked_sources() -> list[str]:
    result = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    names = result.stdout.splitlines()
    return [
        n
        for n in names
        if Path(n).suffix in SOURCE_SUFFIXES or n in SOURCE_NAMES or Path(n).name == "Makefile"
    ]


def test_no_tracked_source_file_cites_an_issue_number() -> None:
    offenders = []
    for name in tracked_sources():
        path = ROOT / name
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text("utf-8", errors="ignore").splitlines(), 1):
            if cited_issues(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == [], "say the reason instead:\n" + "\n".join(offenders)


def test_no_tracked_file_name_cites_an_issue_number() -> None:
    assert [n for n in tracked_sources() if cited_issues(n)] == []


def test_the_check_covers_the_code_the_tests_and_the_ci_script() -> None:
    sources = set(tracked_sources())
    assert {"Makefile", ".ci/run", "pyproject.toml", "cds_service/app.py"} <= sources
    assert {"tests/test_no_issue_refs.py", "fhir_mappings/data/terminology.yaml"} <= sources


# Spelt in pieces, so that this file does not cite what it looks for.
_WORD, _HASH = "iss" + "ue", "#"


@pytest.mark.parametrize(
    "text",
    [
        f"# One slow server must not starve another ({_WORD} 18).",
        f'"""{_WORD.title()} 14, principle 2: treatment history counts."""',
        f"# see {_WORD} {_HASH}7 for why",
        f"{_WORD}s 3 and 5",
        f"tests/test_{_WORD}14_clinical.py",
        f"# the memo was dropped ({_HASH}17)",
        f"# fixes {_HASH}4",
        f"(see {_HASH}12 and the thread)",
    ],
)
def test_the_check_finds_a_citation(text: str) -> None:
    assert cited_issues(text), text


@pytest.mark.parametrize(
    "text",
    [
        '"""PKCS#8 PEM, unencrypted: for a developer\'s machine only."""',
        "markdown json code block #0, 0-based",
        "color: #1b1f24; background: #13294b;",
        "# an issued token; the issuer's key",
        "muscle tissue 3 cm below",
        "&#39; is an apostrophe",
    ],
)
def test_the_check_leaves_other_text_alone(text: str) -> None:
    assert cited_issues(text) == []
