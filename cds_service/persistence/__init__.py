"""Persistence (issue 7): feedback and a hook-call audit trail on SQLite or PostgreSQL."""

from __future__ import annotations

from cds_service.persistence.store import SchemaOutOfDate, Store

__all__ = ["SchemaOutOfDate", "Store"]
