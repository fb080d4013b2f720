"""The image builds, and its container serves as a non-root user without build tools.

Where no builder or base image is at hand the tests skip and say which. On CI (.ci/run sets
CDS_TEST_IMAGE_BUILD=1) Debian's buildah builds it; no container registry can be reached
there, so the Dockerfile's PYTHON_IMAGE is a stand-in made from Debian bookworm's own
python3 packages by mmdebstrap (the same Debian release and Python minor as the default base).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
STANDIN = "localhost/cds-python-base:bookworm"
TAG = "localhost/cds-service:test"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")

# Runs inside the built container: what a user would check first, then the service itself.
CONTAINER_CHECK = r"""
import importlib.util, json, os, shutil, subprocess, sys, time, urllib.request as u
port, healthcheck = sys.argv[1], json.loads(sys.argv[2])
result = {"uid": os.getuid(), "tools": [t for t in ("gcc", "cc", "make", "pip", "pip3")
          if shutil.which(t)], "pip_module": importlib.util.find_spec("pip") is not None}
serve = subprocess.Popen(["cds-service", "serve", "--host", "127.0.0.1", "--port", port,
                          "--workers", "1"], env={**os.environ, "CDS_AUTH": "disabled"},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(180):
        try:
            result["readyz"] = json.loads(u.urlopen(f"http://127.0.0.1:{port}/readyz").read())
            break
        except OSError:
            time.sleep(0.5)
    probe = [part.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for part in healthcheck]
    result["healthcheck_rc"] = subprocess.run(probe, timeout=10).returncode
finally:
    serve.terminate()
    serve.wait(30)
print(json.dumps(result))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _default_base() -> str:
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert match
    return match.group(1)


@pytest.fixture(scope="module")
def buildah() -> list[str]:
    found = shutil.which("buildah")
    if not found:
        docker = shutil.which("docker")
        engine = docker and subprocess.run([docker, "info"], capture_output=True, check=False)
        why = (
            "a docker engine answers but"
            if engine and engine.returncode == 0
            else "no docker engine,"
        )
        pytest.skip(f"image not built: {why} no buildah (Debian's buildah builds it on CI)")
    return [found, "--storage-driver", "vfs"]


def _has_image(buildah: list[str], name: str) -> bool:
    inspect = [*buildah, "inspect", "--type", "image", name]
    return subprocess.run(inspect, capture_output=True, timeout=60, check=False).returncode == 0


def _standin_base(buildah: list[str], tmp: Path) -> str:
    """Debian bookworm's python3 as a base image, made once and kept in buildah's storage."""
    if _has_image(buildah, STANDIN):
        return STANDIN
    mmdebstrap = shutil.which("mmdebstrap")
    if not mmdebstrap:
        pytest.skip(f"image not built: {_default_base()} cannot be pulled here and no mmdebstrap")
    rootfs = tmp / "rootfs.tar"
    made = subprocess.run(
        [
            mmdebstrap,
            "--variant=minbase",
            "--include=python3,python3-venv,passwd",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "bookworm",
            str(rootfs),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(
            f"image not built: no Debian packages for the stand-in base: {made.stderr[-500:]}"
        )
    container = subprocess.run(
        [*buildah, "from", "scratch"], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        subprocess.run(
            [*buildah, "add", container, str(rootfs), "/"], capture_output=True, check=True
        )
        subprocess.run(
            [*buildah, "commit", "-q", container, STANDIN], capture_output=True, check=True
        )
    finally:
        subprocess.run([*buildah, "rm", container], capture_output=True, check=False)
        rootfs.unlink(missing_ok=True)
    return STANDIN


@pytest.fixture(scope="module")
def image(buildah: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The Dockerfile built by buildah (docker format, so HEALTHCHECK is kept)."""
    base = _default_base()
    args: list[str] = []
    if not _has_image(buildah, base):
        if os.environ.get("CDS_TEST_IMAGE_BUILD") != "1":
            pytest.skip(
                f"image not built: {base} is not in local storage and no registry can be reached;"
                " CDS_TEST_IMAGE_BUILD=1 (.ci/run sets it) builds on a Debian stand-in base"
            )
        args = [
            "--build-arg",
            f"PYTHON_IMAGE={_standin_base(buildah, tmp_path_factory.mktemp('base'))}",
        ]
    tmp = tmp_path_factory.mktemp("image")
    if HOST_CA.exists():
        # The build's pip trusts what this machine trusts (a proxy's CA included).
        (tmp / "pip.conf").write_text(f"[global]\ncert = {HOST_CA}\n")
        args += ["-v", f"{HOST_CA}:{HOST_CA}:ro", "-v", f"{tmp / 'pip.conf'}:/etc/pip.conf:ro"]
    build = [*buildah, "bud", "--format", "docker", "--isolation", "chroot", "--layers=false"]
    result = subprocess.run(
        [*build, *args, "-t", TAG, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    inspect = subprocess.run(
        [*buildah, "inspect", "--type", "image", TAG], capture_output=True, text=True, check=True
    )
    try:
        yield {"config": json.loads(inspect.stdout)["Docker"]["config"], "buildah": buildah}
    finally:
        subprocess.run([*buildah, "rmi", "-f", TAG], capture_output=True, check=False)


def test_image_config_is_non_root_with_a_healthcheck_and_the_serve_command(
    image: dict[str, Any],
) -> None:
    config = image["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["cds-service"] and config["Cmd"][0] == "serve"
    assert (
        config["Healthcheck"]["Test"][0] == "CMD"
        and "/healthz" in config["Healthcheck"]["Test"][-1]
    )
    assert "8080/tcp" in config["ExposedPorts"]


def test_container_serves_without_build_tools_and_is_healthy(image: dict[str, Any]) -> None:
    buildah = image["buildah"]
    container = subprocess.run(
        [*buildah, "from", TAG], capture_output=True, text=True, check=True
    ).stdout.strip()
    healthcheck = image["config"]["Healthcheck"]["Test"][1:]
    try:
        run = subprocess.run(
            [
                *buildah,
                "run",
                "--isolation",
                "chroot",
                container,
                "--",
                "python3",
                "-c",
                CONTAINER_CHECK,
                str(_free_port()),
                json.dumps(healthcheck),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        subprocess.run([*buildah, "rm", container], capture_output=True, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["uid"] == 10001
    assert result["tools"] == [] and result["pip_module"] is False
    assert result["readyz"]["status"] == "ready" and result["readyz"]["knowledgeVersion"]
    assert result["healthcheck_rc"] == 0
