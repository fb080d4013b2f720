"""Typed failures of FHIR access; messages never carry URLs, tokens or patient ids."""

from __future__ import annotations

from cds_service.errors import CDSError


class FhirError(Exception):
    """A FHIR query failed; `reason` is the stable short word reported as unavailable."""

    reason = "fhir_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FhirTimeout(FhirError):
    """The per-request timeout or the hook's time budget ran out."""

    reason = "timeout"


class FhirHttpError(FhirError):
    """The server answered with an HTTP error status (after any retries)."""

    reason = "http_error"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class FhirMalformed(FhirError):
    """The body was not a FHIR JSON resource of the expected kind."""

    reason = "malformed"


class FhirTooLarge(FhirError):
    """A response, page count or resource count went past its configured bound."""

    reason = "too_large"


class FhirConnectionError(FhirError):
    """The server could not be reached."""

    reason = "unreachable"


class FhirForbiddenServer(FhirError):
    """A URL (fhirServer, redirect or next link) is outside the allow-list."""

    reason = "server_not_allowed"


class FhirServerNotAllowed(CDSError):
    """Data had to be fetched but `fhirServer` is not on the allow-list (403; nothing fetched)."""

    status = 403
    code = "fhir_server_not_allowed"
