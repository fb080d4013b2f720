"""Alert fatigue: a caution overridden with a reason is not repeated on chart open
for the same patient and problem for `override_snooze_days` (stored feedback, hashed ids)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from persistence_helpers import audit_entry, feedback
from sqlalchemy import text

from cds_service.fhir.scenarios import build_request, load_scenario
from cds_service.hooks.services import SNOOZED_KEY
from cds_service.persistence import Store, migrate, override_index, snooze
from cds_service.persistence import store as store_module
from cds_service.persistence.audit import AuditEntry
from cds_service.persistence.db import make_engine
from cds_service.persistence.override_index import OverrideIndex
from cds_service.persistence.store import SNOOZE_BUDGET_SECONDS
from tests.conftest import FIXTURES

PV = "myopathy-patient-view"
# Spasm + myocarditis + an active NSAID: CAU-4 warns on chart open.
SCENARIO = "cau-4-patient-view-active-nsaid"


def chart_open(app: Flask, client: FlaskClient, patient_id: str) -> dict[str, Any]:
    scenario = load_scenario(FIXTURES / SCENARIO)
    body = build_request(scenario, app.extensions["cds_registry"])
    body["context"]["patientId"] = patient_id
    body["prefetch"]["patient"]["id"] = patient_id  # a Patient of another id is refused (400)
    response = client.post(f"/cds-services/{PV}", json=body)
    assert response.status_code == 200
    payload: dict[str, Any] = response.get_json()
    return payload


def cau4(payload: dict[str, Any]) -> dict[str, Any] | None:
    found = [c for c in payload["cards"] if c["source"]["topic"]["code"] == "CAU-4"]
    return found[0] if found else None


def override(client: FlaskClient, card: dict[str, Any], *, at: datetime, **kw: Any) -> None:
    item = feedback(card["uuid"], at=at.isoformat().replace("+00:00", "Z"), **kw)
    response = client.post(f"/cds-services/{PV}/feedback", json={"feedback": [item]})
    assert response.status_code == 200


def store_of(app: Flask) -> Store:
    store: Store = app.extensions["cds_store"]
    return store


def test_overridden_caution_is_snoozed_for_that_patient_only(
    app: Flask, client: FlaskClient
) -> None:
    first = cau4(chart_open(app, client, "pat-a"))
    assert first is not None and first["indicator"] == "warning"
    # No flush: feedback sent at once still finds its card audited (the writer is waited for).
    override(client, first, at=datetime.now(UTC))

    again = chart_open(app, client, "pat-a")
    assert cau4(again) is None
    assert again["extension"][SNOOZED_KEY] == [
        {"recommendationId": "CAU-4", "problem": "cardiac", "snoozeDays": 7.0}
    ]
    other = chart_open(app, client, "pat-b")
    assert cau4(other) is not None and SNOOZED_KEY not in other.get("extension", {})


def test_the_audit_keeps_the_problem_and_no_patient_id(app: Flask, client: FlaskClient) -> None:
    chart_open(app, client, "pat-secret-42")
    store = store_of(app)
    assert store.flush()
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT recommendation_id, problem FROM audit_card")).all()
        hashes = list(conn.execute(text("SELECT patient_hash FROM audit_hook_call")).scalars())
    assert ("CAU-4", "cardiac") in [tuple(r) for r in rows]
    assert hashes == [store.hasher("pat-secret-42")] and "pat-secret-42" not in hashes


def test_an_old_override_or_one_without_reason_does_not_snooze(
    app: Flask, client: FlaskClient
) -> None:
    card = cau4(chart_open(app, client, "pat-c"))
    assert card is not None
    assert store_of(app).flush()
    override(client, card, at=datetime.now(UTC) - timedelta(days=8))  # beyond 7 days
    override(client, card, at=datetime.now(UTC), reason=None, comment="seen")  # no reason
    assert cau4(chart_open(app, client, "pat-c")) is not None


def test_order_select_is_never_snoozed(app: Flask, client: FlaskClient) -> None:
    card = cau4(chart_open(app, client, "fx-patient"))
    assert card is not None
    assert store_of(app).flush()
    override(client, card, at=datetime.now(UTC))
    scenario = load_scenario(FIXTURES / "cau-4-fires-myocarditis")
    body = build_request(scenario, app.extensions["cds_registry"])
    cards = client.post("/cds-services/myopathy-order-select", json=body).get_json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["CAU-4"]


def test_snooze_days_zero_turns_it_off(settings: dict[str, Any], tmp_path: Any) -> None:
    from conftest import migrate_url

    from cds_service import create_app

    if settings["DATABASE_URL"]:
        migrate_url(settings["DATABASE_URL"], settings["DATA_DIR"])
    policy = tmp_path / "policy.yaml"
    policy.write_text("override_snooze_days: 0\n", encoding="utf-8")
    app = create_app({"AUTH": "disabled", **settings, "SITE_POLICY_FILE": str(policy)})
    try:
        client = app.test_client()
        card = cau4(chart_open(app, client, "pat-d"))
        assert card is not None
        assert store_of(app).flush()
        override(client, card, at=datetime.now(UTC))
        assert cau4(chart_open(app, client, "pat-d")) is not None
    finally:
        store_of(app).close()


def test_a_write_in_progress_does_not_hide_a_snooze(app: Flask, client: FlaskClient) -> None:
    """Reading the snooze takes no write lock: an audit or feedback transaction running
    meanwhile (another worker, another replica) neither delays it nor shows the card again."""
    card = cau4(chart_open(app, client, "pat-w"))
    assert card is not None
    override(client, card, at=datetime.now(UTC))
    store = store_of(app)
    assert store.flush()
    writer = store.engine.connect()
    try:
        writer.begin()
        writer.execute(text("UPDATE audit_hook_call SET card_count = card_count"))
        started = time.monotonic()
        assert cau4(chart_open(app, client, "pat-w")) is None
        assert time.monotonic() - started < SNOOZE_BUDGET_SECONDS
    finally:
        writer.rollback()
        writer.close()


def test_the_prepared_read_finds_what_sqlalchemy_finds(app: Flask, client: FlaskClient) -> None:
    """The snooze read's own path (on SQLite, the driver's) binds values as SQLAlchemy
    does: an override exactly at the window's start is in, a microsecond earlier is out."""
    card = cau4(chart_open(app, client, "pat-edge"))
    assert card is not None
    at = datetime.now(UTC).replace(microsecond=123456) - timedelta(days=2)
    override(client, card, at=at)
    store = store_of(app)
    patient_hash = store.hasher("pat-edge")
    read = snooze._OVERRIDDEN
    for since, expected in ((at, 1), (at + timedelta(microseconds=1), 0)):
        params = {"patient_hash": patient_hash, "since": since}
        with store.engine.connect() as conn:
            via_sqlalchemy = [tuple(r) for r in conn.execute(read.statement, params).all()]
        assert [tuple(r) for r in read.rows(store.engine, params)] == via_sqlalchemy
        assert len(via_sqlalchemy) == expected


def test_a_snooze_the_database_cannot_read_shows_the_card(
    app: Flask, client: FlaskClient, caplog: Any
) -> None:
    card = cau4(chart_open(app, client, "pat-gone"))
    assert card is not None
    override(client, card, at=datetime.now(UTC))
    engine = store_of(app).engine
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE feedback RENAME TO feedback_elsewhere"))
    try:
        assert cau4(chart_open(app, client, "pat-gone")) is not None
        assert "snooze lookup failed" in caplog.text
    finally:  # the PostgreSQL database is shared by the session's tests
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE feedback_elsewhere RENAME TO feedback"))


def _lookup_steps(store: Store, patient_id: str) -> int:
    """SQLite virtual-machine steps of one snooze lookup: its work, not its time."""
    sql, names, defaults, processors = snooze._OVERRIDDEN._compile(store.engine)
    since = datetime.now(UTC) - timedelta(days=7)
    values = {**defaults, "patient_hash": store.hasher(patient_id), "since": since}
    args = [processors[n](values[n]) if n in processors else values[n] for n in names]
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    connection = sqlite3.connect(str(store.engine.url.database))
    try:
        connection.set_progress_handler(step, 1)
        assert connection.execute(sql, args).fetchall() == [("CAU-4", "cardiac")]
    finally:
        connection.close()
    return steps


def test_the_snooze_lookup_does_not_grow_with_the_charts_opens(
    app: Flask, client: FlaskClient, backend: str
) -> None:
    """A chart opened thousands of times (a long stay) must not make every later open read
    all its past calls' cards: the lookup starts from the patient's overrides."""
    if backend != "sqlite":
        pytest.skip("counts SQLite's virtual-machine steps (PostgreSQL: the plan test below)")
    card = cau4(chart_open(app, client, "pat-busy"))
    assert card is not None
    override(client, card, at=datetime.now(UTC))
    store = store_of(app)
    assert store.flush()
    few = _lookup_steps(store, "pat-busy")
    for _ in range(60):
        chart_open(app, client, "pat-busy")
    assert store.flush()
    many = _lookup_steps(store, "pat-busy")
    assert many <= few + 50, (few, many)


def _cau4_call(store: Store, card: str, patient_id: str) -> AuditEntry:
    entry = audit_entry((card, "CAU-4"), patient_hash=store.hasher(patient_id))
    cards = tuple(replace(c, problems=("cardiac",)) for c in entry.cards)
    return replace(entry, cards=cards)


def test_an_override_sent_before_its_card_was_audited_still_snoozes(app: Flask) -> None:
    """Feedback may reach a worker before the card's audit record does (another worker's
    writer): it is stored without a patient and found through its card once audited."""
    store, card = store_of(app), str(uuid.uuid4())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    store.record_feedback(PV, [feedback(card, at=now)])
    assert store.snoozed("pat-late", 7) == frozenset()
    store.submit_audit(_cau4_call(store, card, "pat-late"))
    assert store.flush()
    assert store.snoozed("pat-late", 7) == {("CAU-4", "cardiac")}
    assert store.snoozed("pat-other", 7) == frozenset()


def test_migrating_to_0004_gives_earlier_overrides_their_patient(app: Flask) -> None:
    store, card = store_of(app), str(uuid.uuid4())
    store.submit_audit(_cau4_call(store, card, "pat-before"))
    assert store.flush()
    migrate.downgrade(store.engine, "0003")
    with store.engine.begin() as conn:  # feedback as stored before 0004: no patient column
        conn.execute(
            text(
                "INSERT INTO feedback (service_id, card_uuid, outcome, outcome_timestamp,"
                " content_hash, accepted_suggestions, reason_code, card_known, received_at)"
                " VALUES (:s, :c, 'overridden', :t, 'h', '[]', 'not-applicable', true, :t)"
            ),
            {"s": PV, "c": card, "t": datetime.now(UTC)},
        )
    migrate.upgrade(store.engine)
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT patient_hash FROM feedback")).scalars().all()
    assert stored == [store.hasher("pat-before")]
    assert store.snoozed("pat-before", 7) == {("CAU-4", "cardiac")}


def test_on_postgresql_the_snooze_lookup_starts_from_overrides(app: Flask, backend: str) -> None:
    """The plan on a new database (no statistics yet): no branch scans the patient's calls."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's plan")
    engine = store_of(app).engine
    statement = snooze._OVERRIDDEN.statement
    params = {"patient_hash": "x", "since": datetime.now(UTC)}
    with engine.connect() as conn:
        compiled = statement.compile(dialect=engine.dialect)
        values = {**{k: b.value for k, b in compiled.binds.items()}, **params}
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + str(compiled), values))
    assert "ix_audit_hook_call_patient_hash" not in plan, plan
    assert plan.count("ix_feedback_patient_snooze") == 2, plan


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The patients (keyed hashes) whose snooze the store reads from the database."""
    read: list[str] = []
    real = store_module.overridden_problems

    def counted(engine: Any, patient_hash: str, days: float) -> frozenset[tuple[str, str]]:
        read.append(patient_hash)
        return real(engine, patient_hash, days)

    monkeypatch.setattr(store_module, "overridden_problems", counted)
    return read


def _index_loaded(store: Store) -> None:
    """Wait (bounded) for the lookup threads to read which patients have an override."""
    index = getattr(store, "_overrides", None)
    if index is None:
        return  # no index (PostgreSQL): nothing to wait for
    for _ in range(200):
        if not index.stale(7.0):
            return
        time.sleep(0.01)
    raise AssertionError("the override index was never read")


def test_a_chart_no_override_names_is_opened_without_a_database_read(
    app: Flask, client: FlaskClient, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most charts opened have no override: their snooze costs no read and no thread."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL deployments span hosts: every open reads the database")
    store, reads = store_of(app), _reads(monkeypatch)
    card = cau4(chart_open(app, client, "pat-n1"))  # read: the index is not read yet
    assert card is not None
    override(client, card, at=datetime.now(UTC))
    assert cau4(chart_open(app, client, "pat-n1")) is None  # read: feedback since
    _index_loaded(store)
    assert cau4(chart_open(app, client, "pat-n2")) is not None  # not read
    assert cau4(chart_open(app, client, "pat-n1")) is None  # read: an override names it
    assert reads == [store.hasher("pat-n1")] * 3


def test_an_override_stored_by_another_process_snoozes_the_next_open(
    app: Flask, client: FlaskClient, settings: dict[str, Any]
) -> None:
    """Another worker on the same database stores the feedback: this one's index is stale."""
    store = store_of(app)
    card = cau4(chart_open(app, client, "pat-x1"))
    assert card is not None and store.flush()
    assert cau4(chart_open(app, client, "pat-x2")) is not None
    _index_loaded(store)  # no override: every patient ruled out
    other = Store.open({**settings, "AUDIT_HASH_KEY": ""})
    try:
        item = feedback(card["uuid"], at=datetime.now(UTC).isoformat().replace("+00:00", "Z"))
        assert other.record_feedback(PV, [item])["stored"] == 1
    finally:
        other.close()
    assert cau4(chart_open(app, client, "pat-x1")) is None


def _override_naming_no_patient(store: Store) -> None:
    """Feedback stored before its card's audit: found through the card once audited."""
    store.record_feedback(PV, [feedback(str(uuid.uuid4()), at=datetime.now(UTC).isoformat())])


def _stamp_removed(store: Store) -> None:
    """Without the stamp, another process's feedback may go unseen."""
    assert store._overrides is not None
    store._overrides._stamp.unlink()


@pytest.mark.parametrize(
    ("before", "after"),
    [(_override_naming_no_patient, None), (None, _stamp_removed)],
    ids=["an override naming no patient yet", "the stamp removed"],
)
def test_nobody_is_ruled_out_when_the_index_cannot_say(
    app: Flask,
    client: FlaskClient,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    before: Any,
    after: Any,
) -> None:
    if backend != "sqlite":
        pytest.skip("the index is SQLite's")
    store = store_of(app)
    if before is not None:
        before(store)
    chart_open(app, client, "pat-u1")
    _index_loaded(store)
    if after is not None:
        after(store)
    reads = _reads(monkeypatch)
    chart_open(app, client, "pat-u2")
    assert reads == [store.hasher("pat-u2")]


def test_a_stamp_that_cannot_be_written_leaves_the_index_off(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cds.db'}")
    try:
        (tmp_path / "cds.db-overrides").mkdir()  # not a file this process can append to
        assert OverrideIndex.beside(engine) is None
    finally:
        engine.dispose()


def test_an_override_found_through_its_card_names_its_patient_in_the_index(
    app: Flask, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the card is audited, the early override names its patient: others are ruled out
    again (the index re-reads while an override's card is still unaudited)."""
    if backend != "sqlite":
        pytest.skip("the index is SQLite's")
    monkeypatch.setattr(override_index, "_UNRESOLVED_SECONDS", 0.0, raising=False)
    store, card = store_of(app), str(uuid.uuid4())
    store.record_feedback(PV, [feedback(card, at=datetime.now(UTC).isoformat())])
    store.submit_audit(_cau4_call(store, card, "pat-late"))
    assert store.flush()
    assert store.snoozed("pat-late", 7) == {("CAU-4", "cardiac")}
    _index_loaded(store)
    reads = _reads(monkeypatch)
    assert store.snoozed("pat-someone-else", 7) == frozenset()
    assert store.snoozed("pat-late", 7) == {("CAU-4", "cardiac")}
    assert reads == [store.hasher("pat-late")]
