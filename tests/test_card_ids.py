"""Card and suggestion uuids: random version-4 uuids, few system calls, none shared by a fork."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.fhir.scenarios import build_request, load_scenario
from cds_service.guideline import card_ids
from tests.conftest import FIXTURES


def _kernel_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes os.urandom is asked for from now on (one entry a system call)."""
    asked: list[int] = []
    real = os.urandom

    def counted(size: int) -> bytes:
        asked.append(size)
        return real(size)

    monkeypatch.setattr(os, "urandom", counted)
    return asked


def test_card_ids_are_distinct_version_4_uuids() -> None:
    drawn = [card_ids.new_uuid() for _ in range(2_000)]
    assert len(set(drawn)) == len(drawn)
    for value in drawn[:300]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value


def test_the_kernel_is_asked_once_for_many_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """uuid.uuid4 makes one getrandom call an id (six a patient-view call, ~14 us each there)."""
    asked = _kernel_reads(monkeypatch)
    card_ids.forget()
    for _ in range(300):
        card_ids.new_uuid()
    assert len(asked) <= 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_draws_ids_of_its_own() -> None:
    card_ids.new_uuid()  # the parent's pool holds ids not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then leave at once
        try:
            os.write(write, " ".join(card_ids.new_uuid() for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode().split()
    os.close(read)
    os.waitpid(pid, 0)
    parent = [card_ids.new_uuid() for _ in range(5)]
    assert len(child) == 5 and not set(child) & set(parent)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_while_another_thread_draws_an_id_does_not_lock_the_child() -> None:
    """A fork copies the pool's lock as it is: held by a thread the child does not have."""
    read, write = os.pipe()
    with card_ids._lock:  # another thread is inside new_uuid at the moment of the fork
        pid = os.fork()
        if pid == 0:  # the child: one id, then leave at once
            try:
                os.write(write, card_ids.new_uuid().encode())
            finally:
                os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 10
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:  # locked: end it, and fail below
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.02)
    got = os.read(read, 4096).decode()  # the child is gone: its id, or nothing
    os.close(read)
    assert got and uuid.UUID(got).version == 4, "the child never got an id: its lock was held"


def test_a_hook_call_does_not_ask_the_kernel_for_each_card(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(FIXTURES / "cau-4-patient-view-active-nsaid")
    body = build_request(scenario, app.extensions["cds_registry"])
    client.post("/cds-services/myopathy-patient-view", json=body)  # warm: imports, pools
    asked = _kernel_reads(monkeypatch)
    cards = 0
    for _ in range(5):
        answer = client.post("/cds-services/myopathy-patient-view", json=body).get_json()
        cards += len(answer["cards"])
    assert cards >= 5 and len(asked) <= 1
