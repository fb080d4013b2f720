"""A real `cds-service serve` on a free loopback port, and the clients that attack it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds_service.security.local_issuer import LocalIssuer

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
ISSUER = LocalIssuer(iss="https://adversary.example.org")
PATIENT_VIEW = "myopathy-patient-view"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """One running `cds-service serve`: its URL, process and log."""

    base: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    def url(self, path: str) -> str:
        return self.base + path

    def auth(self, path: str, **kwargs: Any) -> dict[str, str]:
        """A fresh JWT for exactly this URL (CDS Hooks: aud is the service's URL)."""
        return ISSUER.authorization(self.url(path), **kwargs)

    def workers(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in out.stdout.split()]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def write_issuers(directory: Path) -> Path:
    path = directory / "issuers.json"
    path.write_text(json.dumps({"issuers": [ISSUER.issuer_entry()]}))
    return path


@contextlib.contextmanager
def serve(
    tmp: Path, env: dict[str, str] | None = None, workers: int = 2, args: tuple[str, ...] = ()
) -> Iterator[Served]:
    """Start `cds-service serve` (auth on, trusting ISSUER), yield once /healthz answers."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    data_dir = tmp / "data"
    settings = {
        "CDS_DATA_DIR": str(data_dir),
        "CDS_TRUSTED_ISSUERS_FILE": str(write_issuers(tmp)),
        "CDS_PUBLIC_BASE_URL": base,
        "CDS_LOG_LEVEL": "INFO",
        "CDS_RATE_LIMIT": "100000 per minute",
    }
    settings.update(env or {})
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")} | settings
    log = tmp / f"serve-{port}.log"
    command = [sys.executable, "-m", "cds_service", "serve", "--host", HOST, "--port", str(port)]
    command += ["--workers", str(workers), "--public-base-url", base]
    # CDS_TEST_WORKER_CLASS=gthread shows what the buffered worker protects against.
    command += ["--worker-class", os.environ.get("CDS_TEST_WORKER_CLASS", "buffered"), *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp
        )
    served = Served(base, port, proc, log, data_dir)
    try:
        wait_until(lambda: status_of(served.url("/healthz")) == 200, 60, proc)
        yield served
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_until(condition: Any, seconds: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `condition` (bounded); fail if it never holds or the process died."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            if condition():
                return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {seconds} s")


def status_of(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def request(
    url: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    timeout: float = 10.0,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body or bytes) of one HTTP call; errors are answers too."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    all_headers = {"Content-Type": "application/json"} | (headers or {})
    req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, got, payload = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, got, payload = exc.code, dict(exc.headers), exc.read()
    try:
        return status, got, json.loads(payload)
    except ValueError:
        return status, got, payload


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read the whole answer (the server closes after an error)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def split_response(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
