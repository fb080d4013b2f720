"""The command line: --version, serve --help, a busy port, make serve PORT=, replay."""

from __future__ import annotations

import re
import shlex
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cds_service import __version__
from tests.ops_support import ROOT, Served, clean_env, free_port, run_cli, serving

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE_URL = "http://127.0.0.1:8080"


def test_version_is_the_single_sourced_one(tmp_path: Path) -> None:
    result = run_cli(["--version"], clean_env(tmp_path))
    assert result.returncode == 0
    assert result.stdout.strip() == f"cds-service {__version__}"


def test_serve_help_shows_the_defaults(tmp_path: Path) -> None:
    result = run_cli(["serve", "--help"], clean_env(tmp_path))
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for default in ("(default: 127.0.0.1)", "(default: 8080)", "(default: 2)", "(default: 4)"):
        assert default in text
    assert "(default: 50000)" in text and "(default: None)" not in text


def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--port", str(port)], clean_env(tmp_path, CDS_AUTH="disabled"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cds-service: error: port {port} on 127.0.0.1 is already in use (another server?); "
        "stop it or choose another with --port"
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_serve_takes_a_port(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    # -o: the test runs inside the .venv the stamp stands for; never rebuild it under itself.
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "serve", "PORT={port}"]
    with serving(tmp_path, env, command=command) as served:
        discovery = requests.get(f"{served.url}/cds-services", timeout=10)
        assert discovery.status_code == 200  # the local profile: authentication off
        log = served.wait_for_log("CDS Hooks discovery:")
    port = served.url.rsplit(":", 1)[1]
    assert f"CDS Hooks discovery: http://127.0.0.1:{port}/cds-services" in log


def replay_examples() -> list[str]:
    """Every `cds-service replay` command in the README and docs, as written."""
    found = []
    for path in DOCS:
        for line in path.read_text("utf-8").splitlines():
            command = line.split("  #", 1)[0].strip()
            if re.match(r"^(\.venv/bin/)?cds-service replay ", command):
                found.append(command)
    return found


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path = tmp_path_factory.mktemp("replay-target")
    env = clean_env(tmp_path, CDS_PROFILE="local")
    with serving(tmp_path, env) as served:
        yield served


def test_the_docs_show_replay_examples() -> None:
    assert len(replay_examples()) >= 5


@pytest.mark.parametrize("command", replay_examples())
def test_replay_examples_pass_as_written(tmp_path: Path, command: str, running: Served) -> None:
    # The --url examples name make serve's address; this test's service has a port of its own.
    args = shlex.split(command.replace(EXAMPLE_URL, running.url))[1:]
    paths = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "fixtures").glob("*"))]
    args = [a for arg in args for a in (paths if arg == "fixtures/*" else [arg])]
    result = run_cli(args, clean_env(tmp_path), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed, 0 failed", summary), summary
    if "--url" in args:
        assert "AUTHENTICATION DISABLED" not in result.stderr
        assert result.stderr.strip() == ""


def test_replay_check_against_a_wrong_url_fails_with_a_summary(
    tmp_path: Path, running: Served
) -> None:
    args = ["replay", "--check", "--url", f"{running.url}/wrong", "fixtures/cau-2-fires"]
    result = run_cli(args, clean_env(tmp_path))
    assert result.returncode == 1
    assert "HTTP 404" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"


def test_replay_without_check_fails_on_a_failed_call(tmp_path: Path, running: Served) -> None:
    args = [
        "replay",
        "--url",
        f"{running.url}/wrong",
        "fixtures/cau-2-fires",
        "fixtures/cau-1-fires",
    ]
    result = run_cli(args, clean_env(tmp_path))
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 2 failed"


def test_replay_to_an_unreachable_url_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(["replay", "--url", url, "fixtures/cau-2-fires"], clean_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"replay: cannot reach {url}: ConnectionError"
