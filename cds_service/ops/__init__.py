"""Operating the service: logging, Prometheus metrics and readiness checks."""

from __future__ import annotations

from cds_service.ops.readiness import register_check

__all__ = ["register_check"]
