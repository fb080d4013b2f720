"""A permanent database failure is never answered as retryable (503)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from persistence_helpers import feedback
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from cds_service.persistence import Store
from cds_service.persistence.store import is_transient

PV = "myopathy-patient-view"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            OperationalError("INSERT", {}, Exception("server closed the connection")),
            503,
            "service_unavailable",
        ),
        (
            ProgrammingError("INSERT", {}, Exception("too many bind parameters")),
            500,
            "storage_failed",
        ),
    ],
    ids=["transient", "permanent"],
)
def test_feedback_failures_say_whether_a_retry_can_help(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    error: SQLAlchemyError,
    status: int,
    code: str,
) -> None:
    store: Store = app.extensions["cds_store"]

    def fail(*_: Any, **__: Any) -> Any:
        raise error

    monkeypatch.setattr(store, "_group", None)
    monkeypatch.setattr("cds_service.persistence.store.record_feedback", fail)
    response = client.post(
        f"/cds-services/{PV}/feedback", json={"feedback": [feedback(str(uuid.uuid4()))]}
    )
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_a_lost_connection_is_transient() -> None:
    lost = ProgrammingError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_transient(lost)
