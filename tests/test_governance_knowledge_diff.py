"""`cds-service knowledge diff`: both versions over fixtures, per recommendation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.guideline.knowledge import load_knowledge, shipped_knowledge_text
from tests.conftest import FIXTURES


def knowledge_with(tmp_path: Path, name: str, setting: str, old: str, new: str) -> str:
    """The shipped knowledge with one site-policy default changed (and a new version)."""
    text = shipped_knowledge_text()
    block = re.compile(rf"(  {setting}:\n    default: ){re.escape(old)}\n")
    assert block.search(text), setting
    text = block.sub(rf"\g<1>{new}\n", text)
    text = re.sub(r"^version: .*$", 'version: "review-candidate"', text, count=1, flags=re.M)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def shipped(tmp_path: Path) -> str:
    path = tmp_path / "old.yaml"
    path.write_text(shipped_knowledge_text())
    return str(path)


def test_a_changed_threshold_lists_exactly_the_affected_fixtures(
    tmp_path: Path, shipped: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # CAU-1's longest relaxant course, 21 -> 10 days: the 30-day course's card names the new
    # limit; the 14-day courses (cau-1-short-course, relief-1-fires) now exceed it. The course
    # running 35 days fires either way with the same words, so it is not listed.
    new = knowledge_with(tmp_path, "new.yaml", "muscle_relaxant_max_days", "21", "10")
    assert main(["knowledge", "diff", "--from", shipped, "--to", new, "--json", str(FIXTURES)]) == 1
    report = json.loads(capsys.readouterr().out)
    names = [Path(case).name for case in report["affectedCases"]]
    assert names == ["cau-1-fires", "cau-1-short-course", "relief-1-fires"]
    assert list(report["recommendations"]) == ["CAU-1"]
    cau1 = report["recommendations"]["CAU-1"]
    assert (cau1["added"], cau1["removed"], cau1["changed"]) == (2, 0, 1)
    assert report["totals"] == {"added": 2, "removed": 0, "changed": 1}
    [changed] = [c for c in cau1["changes"] if c["kind"] == "changed"]
    assert Path(changed["case"]).name == "cau-1-fires"
    assert "summary" in changed["fields"]
    assert "21 days" in changed["old"]["summary"] and "10 days" in changed["new"]["summary"]
    assert (report["from"], report["to"], report["cases"]) == (
        load_knowledge(None).version,
        "review-candidate",
        len(list(FIXTURES.iterdir())),
    )


def test_the_text_report_names_cases_and_totals(
    tmp_path: Path, shipped: str, capsys: pytest.CaptureFixture[str]
) -> None:
    new = knowledge_with(tmp_path, "new.yaml", "muscle_relaxant_max_days", "21", "10")
    assert main(["knowledge", "diff", "--from", shipped, "--to", new, str(FIXTURES)]) == 1
    out = capsys.readouterr().out.splitlines()
    shipped_version = load_knowledge(None).version
    assert out[0].startswith(f"knowledge diff: {shipped_version} -> review-candidate")
    assert "CAU-1: 2 added, 0 removed, 1 changed" in out
    assert any(line.startswith("  added    ") and "cau-1-short-course" in line for line in out)
    assert out[-1].startswith("total: 2 added, 0 removed, 1 changed, in 3 of")


def test_a_changed_dose_is_reported_as_the_dose(
    tmp_path: Path, shipped: str, capsys: pytest.CaptureFixture[str]
) -> None:
    new = knowledge_with(tmp_path, "new.yaml", "prednisone_max_mg_per_day", "80", "60")
    capped = str(FIXTURES / "is-1-fires-capped")
    assert main(["knowledge", "diff", "--from", shipped, "--to", new, "--json", capped]) == 1
    [change] = json.loads(capsys.readouterr().out)["recommendations"]["IS-1"]["changes"]
    assert change["kind"] == "changed" and "dose" in change["fields"]
    assert (change["old"]["dose"], change["new"]["dose"]) == ("80 mg", "60 mg")


def test_the_same_knowledge_changes_nothing(
    shipped: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["knowledge", "diff", "--from", shipped, "--to", shipped, str(FIXTURES)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("total: 0 added, 0 removed, 0")


@pytest.mark.parametrize(
    ("content", "message"),
    [("version: 1\n", "guideline knowledge:"), (None, "cannot be read")],
)
def test_an_invalid_version_exits_2(
    tmp_path: Path,
    shipped: str,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    message: str,
) -> None:
    bad = tmp_path / "bad.yaml"
    if content is not None:
        bad.write_text(content)
    assert main(["knowledge", "diff", "--from", shipped, "--to", str(bad), str(FIXTURES)]) == 2
    assert message in capsys.readouterr().err
