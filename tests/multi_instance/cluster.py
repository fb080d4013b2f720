"""Three `cds-service serve` processes behind Debian's nginx, on loopback, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
PROXY_CONF = REPO / "deploy" / "compose" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: object, timeout: float, what: str) -> None:
    """Poll `check()` (True when done) every 0.1 s, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _stop_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group we started (gunicorn's master and workers), then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class Instance:
    """One `cds-service serve` (one gunicorn master and its worker) on its own port."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", "1", "--threads", "4"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            return requests.get(f"{self.url}/readyz", timeout=2).status_code == 200

        wait_until(ready, timeout, f"{self.name} ready")

    def kill(self) -> None:
        """SIGKILL the whole instance (master and worker): no shutdown hook runs."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        """SIGTERM to gunicorn's master only, as `docker stop` and Kubernetes send it."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(40)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)


def _server_params() -> str:
    """The upstream server's parameters in the config, less compose's `resolve`."""
    match = re.search(r"server cds:8080 resolve ([^;]*);", PROXY_CONF.read_text())
    assert match, "deploy/compose/nginx.conf: the upstream server line moved"
    return match.group(1)


def fail_timeout_seconds() -> float:
    """How long nginx leaves a replica alone after a failed connection (then tries it again)."""
    match = re.search(r"fail_timeout=(\d+)s", _server_params())
    assert match
    return float(match.group(1))


def proxy_config(instances: list[Instance], port: int, workdir: Path) -> str:
    """deploy/compose/nginx.conf with loopback upstreams, a free port and private paths."""
    text = PROXY_CONF.read_text()
    params = _server_params()
    servers = "".join(f"server 127.0.0.1:{i.port} {params};\n        " for i in instances)
    text = re.sub(r"server cds:8080 [^;]*;\n\s*", servers, text)
    text = re.sub(r"^\s*resolver [^;]*;\n", "", text, flags=re.MULTILINE)
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    text = text.replace("pid /tmp/nginx.pid;", f"pid {workdir}/nginx.pid;")
    text = text.replace("error_log /dev/stderr", f"error_log {workdir}/error.log")
    text = text.replace("access_log /dev/stdout", f"access_log {workdir}/access.log")
    return text.replace("/tmp/nginx-", f"{workdir}/temp-")


@dataclass
class Proxy:
    """Debian's nginx running deploy/compose/nginx.conf for the instances."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    upstream_log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, instances: list[Instance]) -> None:
        assert NGINX is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        # When run as root, nginx's workers run as nobody: its temp files must be writable.
        self.workdir.chmod(0o777)
        conf = self.workdir / "nginx.conf"
        conf.write_text(proxy_config(instances, self.port, self.workdir))
        command = [NGINX, "-p", str(self.workdir), "-c", str(conf), "-g", "daemon off;"]
        check = subprocess.run([*command[:-2], "-t"], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        with (self.workdir / "nginx.out").open("ab") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(
            lambda: requests.get(f"{self.url}/healthz", timeout=2).status_code == 200,
            20,
            "nginx answering",
        )

    def access_lines(self) -> list[str]:
        path = self.workdir / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)
