"""Persistence: feedback and a hook-call audit trail on SQLite or PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cds_service.persistence.store import SchemaOutOfDate, Store

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> Store:
    """Store in app.extensions["cds_store"], audit listener, report route (see http.py)."""
    from cds_service.persistence import http

    return http.init_app(app)


__all__ = ["SchemaOutOfDate", "Store", "init_app"]
