"""The hook listener: HookRecord -> pseudonymised AuditEntry -> the background writer."""

from __future__ import annotations

import logging

from cds_service.model.events import HookRecord
from cds_service.persistence.audit import AuditEntry
from cds_service.persistence.store import Store, card_entries

log = logging.getLogger(__name__)


class AuditListener:
    """Registered in app.extensions["cds_hook_listeners"]; never fails the hook call."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.failures = 0

    def __call__(self, record: HookRecord) -> None:
        try:
            self.store.submit_audit(to_entry(record, self.store))
        except Exception as exc:
            # Cards are already computed: losing an audit row must not lose the answer.
            self.failures += 1
            log.error("audit record not queued: %s", type(exc).__name__)


def to_entry(record: HookRecord, store: Store) -> AuditEntry:
    """Keep what governance needs; the patient id leaves only as its keyed hash."""
    return AuditEntry(
        hook_instance=record.hook_instance[:128],
        service_id=record.service_id[:128],
        hook=record.hook[:128],
        started_at=record.started_at,
        duration_ms=record.duration_ms,
        patient_hash=store.hasher(record.patient_id),
        knowledge_version=(record.knowledge_version or None) and record.knowledge_version[:128],
        missing_inputs={str(k)[:128]: str(v)[:512] for k, v in record.unavailable.items()},
        cards=card_entries(record.cards) + card_entries(record.silent_cards, mode="silent"),
    )
