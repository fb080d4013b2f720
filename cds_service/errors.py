"""Domain exceptions; the HTTP edge (cds_service.http_errors) maps them to one JSON shape."""

from __future__ import annotations


class CDSError(Exception):
    """A failure with an HTTP status, a stable machine code and a human message."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ConfigError(CDSError):
    """Invalid settings or knowledge: the app refuses to start."""

    code = "config_error"


class InvalidRequest(CDSError):
    """The client sent something the standard does not allow (400)."""

    status = 400
    code = "invalid_request"


class UnsupportedMediaType(CDSError):
    """The body is not JSON (415)."""

    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(CDSError):
    """The body, or a part of it (prefetch keys, Bundle entries, draft orders), is too large."""

    status = 413
    code = "payload_too_large"


class UnknownService(CDSError):
    status = 404
    code = "unknown_service"


class Unauthorized(CDSError):
    status = 401
    code = "unauthorized"


class PrefetchUnavailable(CDSError):
    """Required data could be had neither from prefetch nor from the FHIR server (412)."""

    status = 412
    code = "prefetch_unavailable"


class StorageFailed(CDSError):
    """The database refused the work for good: retrying the same request cannot help (500)."""

    status = 500
    code = "storage_failed"


class ServiceUnavailable(CDSError):
    """A dependency (database) is down: the client should retry (503)."""

    status = 503
    code = "service_unavailable"
