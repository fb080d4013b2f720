"""A captured token replayed across a Redis restart is still refused.

A throwaway redis-server on a free port (append-only file, fsync always: the persistence
docs/operations.md asks for) is killed and started again, by PID; the jti it kept still
refuses the replay. While it is down, calls get 503, never a pass.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import synth
from tests.adversarial.support import (
    HOST,
    ISSUER,
    PATIENT_VIEW,
    Served,
    free_port,
    request,
    serve,
    wait_until,
)

HOOK = f"/cds-services/{PATIENT_VIEW}"
pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")


class ThrowawayRedis:
    """redis-server with an append-only file in `directory`, on a fixed free port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", ""]
        command += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)]
        with (self.directory / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, 20, self.proc)

    def _answers(self) -> bool:
        with socket.create_connection((HOST, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no shutdown save; only the fsynced AOF survives
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, redis: ThrowawayRedis) -> Iterator[Served]:
    env = {"CDS_REDIS_URL": redis.url, "CDS_REDIS_KEY_PREFIX": "cds-adversarial:"}
    with serve(tmp_path_factory.mktemp("redis-serve"), env) as running:
        yield running


def call(served: Served, token: str) -> int:
    body = synth.request_body("patient-view", 10)
    body.pop("fhirServer")
    status, _, _ = request(served.url(HOOK), body, headers={"Authorization": f"Bearer {token}"})
    return status


def test_a_replayed_token_is_refused_after_a_redis_restart(
    served: Served, redis: ThrowawayRedis
) -> None:
    captured = ISSUER.sign(served.url(HOOK))
    assert call(served, captured) == 200
    assert call(served, captured) == 401
    redis.kill()
    try:
        assert call(served, ISSUER.sign(served.url(HOOK))) == 503
        assert call(served, captured) == 503, "while Redis is down nothing is let through"
    finally:
        redis.start()
    deadline = time.monotonic() + 20
    while call(served, ISSUER.sign(served.url(HOOK))) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)  # the workers' Redis connections come back
    assert call(served, captured) == 401, "the jti survived the restart"


def test_tokens_live_minutes_by_default(served: Served) -> None:
    assert call(served, ISSUER.sign(served.url(HOOK), lifetime=290)) == 200
    assert call(served, ISSUER.sign(served.url(HOOK), lifetime=3600)) == 401
