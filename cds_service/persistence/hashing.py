"""Keyed pseudonyms for patient ids in the audit trail (HMAC-SHA256, never the id itself)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select

from cds_service.persistence.db import is_sqlite
from cds_service.persistence.models import ServiceSecret

KEY_FILENAME = "audit-hash.key"
SECRET_NAME = "audit_hash_key"


class PatientHasher:
    """HMAC-SHA256 of a patient id; equal ids give equal hashes while the key is unchanged."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("audit hash key must be at least 16 bytes")
        self._key = key

    def __call__(self, patient_id: str | None) -> str | None:
        if not patient_id:
            return None
        return hmac.new(self._key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


def resolve_key(configured: str, engine: Engine, data_dir: str) -> bytes:
    """AUDIT_HASH_KEY if set; else a generated, persisted key, so hashes stay stable."""
    if configured:
        return configured.encode("utf-8")
    if is_sqlite(engine):
        return _file_key(Path(data_dir) / KEY_FILENAME)
    return _table_key(engine)


def _file_key(path: Path) -> bytes:
    if path.exists():
        return path.read_text(encoding="ascii").strip().encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = secrets.token_hex(32)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(candidate)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        # link() refuses an existing target: of two processes starting together, one wins
        # and the other reads the winner's complete file.
        os.link(temp, path)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip().encode("ascii")
    finally:
        temp.unlink()
    return candidate.encode("ascii")


def _table_key(engine: Engine) -> bytes:
    # Imported here: only PostgreSQL keeps the key in a table; SQLite need not load its dialect.
    from sqlalchemy.dialects.postgresql import insert

    candidate = secrets.token_hex(32)
    with engine.begin() as conn:
        conn.execute(
            insert(ServiceSecret)
            .values(name=SECRET_NAME, value=candidate, created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        stored = conn.execute(
            select(ServiceSecret.c.value).where(ServiceSecret.c.name == SECRET_NAME)
        ).scalar_one()
    return str(stored).encode("ascii")
