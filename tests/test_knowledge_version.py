"""The knowledge's content cannot change without its `version` changing.

tests/knowledge_versions.json records, per released version, the digest of the content
(everything but `version`; comments and layout do not count). Audit records, captures and
`knowledge diff` name a version: the same name must always mean the same rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.guideline.knowledge import content_digest, shipped_knowledge_text

RECORD = Path(__file__).with_name("knowledge_versions.json")
SOURCE = "cds_service/guideline/data/knowledge.yaml"


def check(raw: dict[str, Any], recorded: dict[str, str]) -> str | None:
    """What is wrong (with how to fix it), or None."""
    version, digest = str(raw["version"]), content_digest(raw)
    entry = f'"{version}": "{digest}"'
    if version not in recorded:
        others = [v for v, d in recorded.items() if d == digest]
        if others:
            return (
                f"knowledge version {version!r} has the same content as {others[0]!r}: "
                f"no need for a new version, or record it: add {entry} to {RECORD.name}"
            )
        return (
            f"knowledge version {version!r} is not recorded. If you changed the content on "
            f"purpose, add this line to tests/{RECORD.name}:\n    {entry}"
        )
    if recorded[version] != digest:
        return (
            f"the knowledge content changed but its version is still {version!r}. Bump "
            f"`version` in {SOURCE} (e.g. to today's date, YYYY.MM.DD-N), then add "
            f'"<new version>": "{digest}" to tests/{RECORD.name}. Never edit the digest of a '
            "version already recorded: audit records and captures name it."
        )
    return None


def test_the_shipped_knowledge_version_matches_its_recorded_content() -> None:
    raw = yaml.safe_load(shipped_knowledge_text())
    recorded = json.loads(RECORD.read_text())
    problem = check(raw, recorded)
    assert problem is None, problem


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda raw: raw["site_policy"]["refractory_weeks"].update(default=6), "content changed"),
        (lambda raw: raw.update(version="2099.01.01-1"), "has the same content as"),
        (
            lambda raw: (
                raw["site_policy"]["refractory_weeks"].update(default=6),
                raw.update(version="2099.01.01-1"),
            ),
            "is not recorded",
        ),
        (lambda raw: None, None),
    ],
)
def test_the_check_fails_on_a_content_change_without_a_new_version(
    change: Any, expected: str | None
) -> None:
    raw = yaml.safe_load(shipped_knowledge_text())
    recorded = {raw["version"]: content_digest(raw)}
    change(raw)
    problem = check(raw, recorded)
    assert (problem is None) if expected is None else (expected in (problem or ""))


def test_layout_and_comments_do_not_count() -> None:
    text = shipped_knowledge_text()
    reformatted = "# a new comment\n" + text.replace("version:", "\n\nversion:", 1)
    assert content_digest(yaml.safe_load(reformatted)) == content_digest(yaml.safe_load(text))
