"""Store: migrations, schema check, feedback idempotency, hashing, audit writer, retention."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from persistence_helpers import audit_entry, feedback, reset_postgres, table_count
from sqlalchemy import Engine, inspect, text

from cds_service.errors import ConfigError, InvalidRequest
from cds_service.persistence import SchemaOutOfDate, Store, migrate
from cds_service.persistence.audit import write_entries
from cds_service.persistence.db import make_engine, resolve_url
from cds_service.persistence.feedback import item_from_wire, record_feedback
from cds_service.persistence.hashing import KEY_FILENAME
from cds_service.persistence.models import metadata
from cds_service.persistence.report import ReportFilter, override_report
from cds_service.persistence.retention import purge_audit

TABLES = {"audit_hook_call", "audit_card", "feedback", "service_secret"}


@pytest.fixture
def store(settings: dict[str, Any]) -> Any:
    opened = _migrated_store(settings)
    yield opened
    opened.close()


def test_migrations_create_the_model_schema_and_downgrade_cleanly(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []
    migrate.downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert migrate.schema_state(engine).up_to_date


def test_schema_check_reads_the_revisions_alembic_reads(engine: Engine) -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config(engine))
    assert migrate.head_revisions() == tuple(scripts.get_heads())
    assert migrate.known_revisions() == {script.revision for script in scripts.walk_revisions()}
    with engine.connect() as conn:
        alembic_current = MigrationContext.configure(conn).get_current_heads()
        assert migrate.current_revisions(conn) == tuple(alembic_current) == ("0004",)


def test_schema_check_follows_branches_and_merges_as_alembic_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic.script import ScriptDirectory

    versions = tmp_path / "versions"
    versions.mkdir()
    chain = {"a1": None, "b2": "a1", "c3": "b2", "d3": "b2", "e4": ("c3", "d3"), "f5": "e4"}
    for rev, down in chain.items():
        (versions / f"{rev}_step.py").write_text(
            f'"""Step."""\nrevision = {rev!r}\ndown_revision = {down!r}\n'
            "branch_labels = None\ndepends_on = None\n"
        )
    (versions / "__init__.py").write_text("")
    (versions / "g6_side.py").write_text('revision: str = "g6"\ndown_revision = "d3"\n')
    monkeypatch.setattr(migrate, "VERSIONS_DIR", versions)
    scripts = ScriptDirectory(str(tmp_path))
    assert migrate.head_revisions() == tuple(sorted(scripts.get_heads())) == ("f5", "g6")
    assert migrate.known_revisions() == {s.revision for s in scripts.walk_revisions()}


# What a worker would carry for nothing: Alembic and Mako (migrations only), the ORM (the tables
# are Core tables) and, on SQLite, the PostgreSQL dialect. About 16 MiB together.
NOT_IN_A_WORKER = ("alembic", "mako", "sqlalchemy.orm", "sqlalchemy.dialects.postgresql")


def test_a_sqlite_worker_loads_no_migration_orm_or_postgresql_modules(tmp_path: Path) -> None:
    Store.open({"DATA_DIR": str(tmp_path)}).close()  # first start: SQLite upgrades itself
    card = str(uuid.uuid4())
    body = {"feedback": [feedback(card, "accepted")]}
    script = (
        "import sys; from cds_service import create_app; "
        f"app = create_app({{'AUTH': 'disabled', 'DATA_DIR': {str(tmp_path)!r}}}); "
        "client = app.test_client(); "
        f"answer = client.post('/cds-services/myopathy-patient-view/feedback', json={body!r}); "
        "app.extensions['cds_store'].close(); "
        "print(answer.status_code, answer.get_json()); "
        f"print(sorted(m for m in sys.modules if m.startswith({NOT_IN_A_WORKER!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip().splitlines()[-2:] == [
        "200 {'stored': 1, 'unknownCards': [" + repr(card) + "]}",
        "[]",
    ]


def test_serve_migrates_a_sqlite_file_behind_in_a_child_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cds-service serve` keeps Alembic out of the master, whose memory the workers inherit."""
    from cds_service.serve import _upgrade_sqlite_apart

    monkeypatch.delenv("CDS_DATABASE_URL", raising=False)
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path))
    eng = make_engine(resolve_url("", str(tmp_path)))
    try:
        assert migrate.schema_state(eng).current == ()
        _upgrade_sqlite_apart()
        assert migrate.schema_state(eng).up_to_date
        with eng.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        _upgrade_sqlite_apart()  # newer than the code: left for create_app to refuse
        assert migrate.schema_state(eng).current == ("9999",)
    finally:
        eng.dispose()


def test_sqlite_default_upgrades_itself_on_start(tmp_path: Path) -> None:
    opened = Store.open({"DATA_DIR": str(tmp_path)})
    try:
        assert migrate.schema_state(opened.engine).up_to_date
        assert (tmp_path / "cds-service.sqlite3").exists()
    finally:
        opened.close()


@pytest.mark.postgres
def test_postgres_behind_schema_refuses_to_start(postgres_database: str) -> None:
    reset_postgres(postgres_database)
    with pytest.raises(SchemaOutOfDate, match="cds-service db upgrade"):
        Store.open({"DATABASE_URL": postgres_database, "DATA_DIR": "unused"})


@pytest.mark.postgres
def test_postgres_unreachable_at_start_is_a_clear_config_error(
    postgres_admin_url: str,
) -> None:
    from sqlalchemy.engine import make_url

    closed = make_url(postgres_admin_url).set(port=1).render_as_string(hide_password=False)
    with pytest.raises(ConfigError, match="cannot reach the database"):
        Store.open({"DATABASE_URL": closed, "DATABASE_TIMEOUT_SECONDS": 1.0})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/cds", "postgresql+psycopg://u:p@db:5432/cds"),
        ("postgres://u@db/cds", "postgresql+psycopg://u@db/cds"),
        ("postgresql+psycopg://u@db/cds", "postgresql+psycopg://u@db/cds"),
        ("sqlite:////var/lib/cds/cds.db", "sqlite:////var/lib/cds/cds.db"),
    ],
)
def test_database_url_mapping(given: str, expected: str) -> None:
    assert resolve_url(given, "unused") == expected


@pytest.mark.parametrize("given", ["mysql://u@db/cds", "postgresql+asyncpg://u@db/x", "nonsense"])
def test_unsupported_database_url_is_refused(given: str) -> None:
    with pytest.raises(ConfigError):
        resolve_url(given, "unused")


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path: Path) -> None:
    eng = make_engine(resolve_url("", str(tmp_path)), timeout_seconds=4.0)
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    eng.dispose()


def test_feedback_is_stored_once_on_identical_retry(store: Store) -> None:
    card = str(uuid.uuid4())
    store.submit_audit(audit_entry((card, "IS-2")))
    assert store.flush()
    first = store.record_feedback("myopathy-patient-view", [feedback(card)])
    retry = store.record_feedback("myopathy-patient-view", [feedback(card)])
    assert first == {"stored": 1}
    assert retry == {"stored": 0, "duplicates": 1}
    assert table_count(store.engine, "feedback") == 1


def test_different_feedback_for_one_card_is_kept(store: Store) -> None:
    card = str(uuid.uuid4())
    store.record_feedback(
        "svc",
        [
            feedback(card, reason="a"),
            feedback(card, reason="b"),
            feedback(card, at="2026-11-20T10:05:00+01:00"),
            feedback(card, "accepted"),
            feedback(card, reason="a"),
        ],
    )
    assert table_count(store.engine, "feedback") == 4


def test_timestamps_equal_in_utc_are_one_retry(store: Store) -> None:
    card = str(uuid.uuid4())
    store.record_feedback("svc", [feedback(card, at="2026-11-20T10:00:00Z")])
    again = store.record_feedback("svc", [feedback(card, at="2026-11-20T11:00:00.000+01:00")])
    assert again["stored"] == 0


def test_feedback_for_unissued_card_is_accepted_and_marked_unknown(store: Store) -> None:
    issued, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    store.submit_audit(audit_entry((issued, "MON-1")))
    store.flush()
    body = store.record_feedback("svc-other", [feedback(issued)])
    assert body["unknownCards"] == [issued]  # issued by another service: not ours here
    body = store.record_feedback("myopathy-patient-view", [feedback(issued), feedback(stranger)])
    assert body == {"stored": 2, "unknownCards": [stranger]}
    assert table_count(store.engine, "feedback", "card_known = false") == 2


def test_feedback_arriving_before_its_audit_record_becomes_known(store: Store) -> None:
    card = str(uuid.uuid4())
    store.record_feedback("myopathy-patient-view", [feedback(card)])
    assert unknown_feedback(store.engine) == 1
    store.submit_audit(audit_entry((card, "IS-1")))
    assert store.flush()
    assert unknown_feedback(store.engine) == 0
    assert table_count(store.engine, "feedback", "card_known = false") == 1  # as received


def test_a_batch_lands_whole_with_each_card_on_its_own_call(engine: Engine) -> None:
    """Several calls in one write: every card row names the call that issued it."""
    write_entries(engine, [audit_entry(("earlier", "IS-1"))])  # ids do not start at 1
    early = {"pv": str(uuid.uuid4()), "os": str(uuid.uuid4())}
    record_feedback(engine, "pv", [item_from_wire(feedback(early["pv"]))])
    record_feedback(engine, "os", [item_from_wire(feedback(early["pv"]))])  # another service
    record_feedback(engine, "os", [item_from_wire(feedback(early["os"]))])
    batch = [
        audit_entry(*[(f"card-{i}-{j}", f"REC-{i}") for j in range(i % 4)], service=service)
        for i, service in enumerate(["pv", "os", "pv", "os", "pv", "pv", "os"])
    ]
    batch[1] = audit_entry((early["os"], "REC-1"), service="os")
    batch[2] = audit_entry((early["pv"], "REC-2"), ("card-2-1", "REC-2"), service="pv")
    write_entries(engine, batch)
    with engine.connect() as conn:
        calls = conn.execute(
            text("SELECT id, hook_instance, service_id, card_count FROM audit_hook_call")
        ).all()
        cards = conn.execute(
            text("SELECT hook_call_id, card_uuid, recommendation_id, service_id FROM audit_card")
        ).all()
    by_instance = {instance: (call_id, svc, n) for call_id, instance, svc, n in calls}
    assert len(calls) == 1 + len(batch)
    for entry in batch:
        call_id, service, count = by_instance[entry.hook_instance]
        stored = sorted((u, r, s) for cid, u, r, s in cards if cid == call_id)
        expected = sorted((c.uuid, c.recommendation_ids[0], entry.service_id) for c in entry.cards)
        assert (service, count, stored) == (entry.service_id, len(entry.cards), expected)
    # Feedback is matched within its own service: the "os" feedback for a "pv" card stays unknown.
    assert unknown_feedback(engine) == 1
    assert unknown_feedback(engine, "os") == 1


def unknown_feedback(engine: Engine, service: str | None = None) -> int:
    """Feedback the report counts as for cards the audit trail does not hold."""
    report = override_report(engine, ReportFilter(service_id=service))
    return int(report["feedbackForUnknownCards"])


def test_unparseable_timestamp_is_a_400(store: Store) -> None:
    with pytest.raises(InvalidRequest):
        store.record_feedback("svc", [feedback("c", at="2026-13-45T10:00:00Z")])


def test_audit_keeps_the_hash_never_the_patient_id(settings: dict[str, Any]) -> None:
    store = _migrated_store(settings)
    try:
        digest = store.hasher("Patient-123")
        assert digest and len(digest) == 64 and "Patient-123" not in digest
        assert store.hasher("Patient-123") == digest
        assert store.hasher("Patient-124") != digest
        assert store.hasher(None) is None
    finally:
        store.close()
    again = Store.open(settings)
    try:
        assert again.hasher("Patient-123") == digest  # generated key persisted
    finally:
        again.close()
    if not settings["DATABASE_URL"]:
        assert (Path(settings["DATA_DIR"]) / KEY_FILENAME).stat().st_mode & 0o077 == 0


def test_configured_hash_key_wins(settings: dict[str, Any]) -> None:
    keyed = {**settings, "AUDIT_HASH_KEY": "k" * 32}
    store = _migrated_store(keyed)
    try:
        import hashlib
        import hmac

        expected = hmac.new(b"k" * 32, b"p1", hashlib.sha256).hexdigest()
        assert store.hasher("p1") == expected
    finally:
        store.close()


def test_audit_writer_stores_calls_and_cards(store: Store) -> None:
    entries = [
        audit_entry((str(uuid.uuid4()), "IS-1"), (str(uuid.uuid4()), "MON-2")) for _ in range(30)
    ]
    for entry in entries:
        store.submit_audit(entry)
    assert store.flush()
    assert table_count(store.engine, "audit_hook_call") == 30
    assert table_count(store.engine, "audit_card") == 60
    assert store.audit.stats.written == 30
    with store.engine.connect() as conn:
        row = conn.execute(
            text("SELECT hook, knowledge_version, duration_ms, card_count FROM audit_hook_call")
        ).first()
    assert tuple(row or ()) == ("patient-view", "test-1", 12.5, 2)


def test_purge_deletes_only_audit_records_older_than_retention(store: Store) -> None:
    now = datetime.now(UTC)
    old_card, new_card = str(uuid.uuid4()), str(uuid.uuid4())
    store.submit_audit(audit_entry((old_card, "IS-1"), at=now - timedelta(days=40)))
    store.submit_audit(audit_entry((new_card, "IS-1"), at=now - timedelta(days=5)))
    store.flush()
    store.record_feedback("myopathy-patient-view", [feedback(old_card)])
    result = purge_audit(store.engine, 30, now=now)
    assert (result.hook_calls, result.cards) == (1, 1)
    assert table_count(store.engine, "audit_card") == 1
    assert table_count(store.engine, "feedback") == 1  # governance record kept


def test_purge_refuses_zero_days(store: Store) -> None:
    with pytest.raises(ValueError):
        purge_audit(store.engine, 0)


def _migrated_store(settings: dict[str, Any]) -> Store:
    eng = make_engine(resolve_url(settings["DATABASE_URL"], settings["DATA_DIR"]))
    migrate.upgrade(eng)
    eng.dispose()
    return Store.open(settings)


def test_db_commands_upgrade_check_and_purge(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cds_service.cli import main

    monkeypatch.setenv("CDS_DATABASE_URL", settings["DATABASE_URL"])
    monkeypatch.setenv("CDS_DATA_DIR", settings["DATA_DIR"])
    assert main(["db", "current"]) == 1
    assert "no schema" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out.strip() == "schema: empty -> 0004"
    assert main(["db", "current"]) == 0
    store = Store.open(settings)
    try:
        now = datetime.now(UTC)
        store.submit_audit(audit_entry(("c-old", "IS-1"), at=now - timedelta(days=100)))
        store.submit_audit(audit_entry(("c-new", "IS-1"), at=now - timedelta(days=2)))
        assert store.flush()
        capsys.readouterr()
        monkeypatch.setenv("CDS_AUDIT_RETENTION_DAYS", "0")
        assert main(["db", "purge"]) == 2
        monkeypatch.setenv("CDS_AUDIT_RETENTION_DAYS", "90")
        assert main(["db", "purge"]) == 0
        assert "deleted 1 hook calls and 1 card records" in capsys.readouterr().out
        assert main(["db", "purge", "--days", "1"]) == 0
        assert "deleted 1 hook calls" in capsys.readouterr().out
        assert table_count(store.engine, "audit_hook_call") == 0
    finally:
        store.close()


def test_audit_queue_is_bounded_and_drops_are_counted() -> None:
    """Database unreachable (nothing listens on port 1): the queue fills, then drops count."""
    from cds_service.persistence.audit import AuditWriter

    unreachable = make_engine("postgresql+psycopg://cds@127.0.0.1:1/cds", timeout_seconds=1.0)
    writer = AuditWriter(unreachable, capacity=5, max_backoff_seconds=0.05)
    for _ in range(8):
        writer.submit(audit_entry((str(uuid.uuid4()), "IS-1")))
    assert writer.stats.dropped == 3
    deadline = time.monotonic() + 10
    while writer.stats.write_errors < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.stats.write_errors >= 2  # retried, not given up
    assert writer.flush(timeout=0.2) is False
    writer.close(timeout=0.2)
    deadline = time.monotonic() + 10
    while writer.stats.dropped < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (writer.stats.written, writer.stats.dropped) == (0, 8)
    unreachable.dispose()


def test_flush_does_not_wait_out_the_writers_linger(engine: Engine) -> None:
    """The writer lingers to gather a batch; whoever waits for the queue to drain cuts it short."""
    from cds_service.persistence.audit import AuditWriter

    writer = AuditWriter(engine, linger_seconds=3600)
    try:
        for _ in range(3):
            writer.submit(audit_entry((str(uuid.uuid4()), "IS-1")))
        assert writer.flush(timeout=60)
        assert table_count(engine, "audit_hook_call") == 3
    finally:
        writer.close()


def test_close_writes_what_is_queued(engine: Engine) -> None:
    from cds_service.persistence.audit import AuditWriter

    writer = AuditWriter(engine)
    for _ in range(50):
        writer.submit(audit_entry((str(uuid.uuid4()), "IS-1")))
    writer.close()
    assert table_count(engine, "audit_hook_call") == 50
    assert writer.stats.written == 50
    writer.submit(audit_entry(("late", "IS-1")))
    assert writer.stats.dropped == 1  # after shutdown nothing is accepted silently


@pytest.mark.parametrize("argv", [["db", "upgrade"], ["db", "current"], ["report"]])
def test_commands_on_an_unreachable_database_fail_with_one_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cds_service.cli import main

    monkeypatch.setenv("CDS_DATABASE_URL", "postgresql://cds:s3cret@127.0.0.1:1/cds")
    monkeypatch.setenv("CDS_DATABASE_TIMEOUT_SECONDS", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "s3cret" not in err


def test_database_newer_than_the_code_refuses_to_start(
    engine: Engine, settings: dict[str, Any]
) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match="newer than this code"):
        Store.open(settings)


def test_a_record_the_database_refuses_is_dropped_alone(store: Store) -> None:
    good = audit_entry((str(uuid.uuid4()), "IS-1"))
    naive = audit_entry((str(uuid.uuid4()), "IS-1"), at=datetime(2026, 11, 25, 10, 0))
    store.submit_audit(good)
    store.submit_audit(naive)  # no time zone: refused before it reaches the database
    store.submit_audit(audit_entry((str(uuid.uuid4()), "MON-1")))
    assert store.flush()
    assert (store.audit.stats.written, store.audit.stats.dropped) == (2, 1)
    assert table_count(store.engine, "audit_hook_call") == 2
