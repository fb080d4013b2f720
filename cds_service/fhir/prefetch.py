"""The prefetch policy with FHIR server access (CDS Hooks 2.0.1 'Prefetch', 'FHIR Resource Access').

What each prefetch key becomes, in one table:

| the client sent            | fhirServer given and allowed | no fhirServer                |
|----------------------------|------------------------------|------------------------------|
| a resource / whole Bundle  | used as sent                 | used as sent                 |
| `null`                     | no such data (empty)         | no such data (empty)         |
| key absent                 | fetched                      | unavailable                  |
| an OperationOutcome        | fetched again                | unavailable                  |
| not a FHIR resource        | fetched again                | unavailable                  |
| a Bundle with a next link  | next pages followed          | unavailable (incomplete)     |

A fetch that fails (timeout, HTTP error, malformed, too large) makes the key unavailable.
Unavailable required keys (ServiceDefinition.required_prefetch) give 412
(hooks.calls.enforce_required); unavailable optional keys are reported with the cards. If a
fetch is needed and `fhirServer` is not on the allow-list the answer is 403
`fhir_server_not_allowed` and nothing is fetched.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

from flask import Flask

from cds_service.fhir.allowlist import ServerPolicy
from cds_service.fhir.errors import (
    FhirError,
    FhirForbiddenServer,
    FhirHttpError,
    FhirServerNotAllowed,
)
from cds_service.fhir.gateway import FhirGateway, FhirTarget, GatewaySettings
from cds_service.fhir.templates import TemplateError, fill_template
from cds_service.model.registry import ServiceDefinition
from cds_service.model.types import HookRequest, ResolvedPrefetch
from cds_service.ops import metrics
from fhir_mappings.lazy import LazyResource

log = logging.getLogger(__name__)

NO_SERVER = "not prefetched and no FHIR server to fetch it from"
PAGED_NO_SERVER = "prefetch Bundle has more pages and no FHIR server to fetch them from"
UNFILLABLE = "the prefetch template cannot be filled from the hook context"
_FAILURES = {
    "timeout": "the FHIR server did not answer within the time budget",
    "malformed": "the FHIR server sent a malformed response",
    "too_large": "the FHIR server's answer exceeded the size, page or resource limits",
    "unreachable": "the FHIR server could not be reached",
    "server_not_allowed": "the FHIR server redirected or linked outside the allowed server",
}


class PrefetchResolver(Protocol):
    def resolve(self, request: HookRequest, service: ServiceDefinition) -> ResolvedPrefetch: ...


def classify_value(value: Any) -> str | None:
    """Why a prefetched value is unusable (None when usable); `null` means 'no data'."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or "resourceType" not in value:
        return "not a FHIR resource"
    if value["resourceType"] == "OperationOutcome":
        return "the client's fetch failed (OperationOutcome)"
    return None


def failure_reason(error: FhirError) -> str:
    """The human reason reported for a key whose fetch failed (no URLs, no ids)."""
    if isinstance(error, FhirHttpError) and error.status is not None:
        return f"the FHIR server answered HTTP {error.status}"
    return _FAILURES.get(error.reason, "the FHIR server fetch failed")


def _next_link(value: Any) -> bool:
    links = value.get("link") if isinstance(value, Mapping) else None
    # Bundle.link is a list; anything else carries no next page (and must not raise: 500).
    return isinstance(links, list) and any(
        isinstance(link, dict) and link.get("relation") == "next" and link.get("url")
        for link in links
    )


def _access_token(request: HookRequest) -> str | None:
    auth = request.fhir_authorization or {}
    token = auth.get("access_token") if isinstance(auth, dict) else None
    return token if isinstance(token, str) and token else None


class FetchingPrefetch:
    """`app.extensions["cds_prefetch"]`: prefetch as sent, completed from the FHIR server."""

    def __init__(self, gateway: FhirGateway | None) -> None:
        self.gateway = gateway  # None: never fetch (offline tools such as `knowledge diff`)

    def resolve(self, request: HookRequest, service: ServiceDefinition) -> ResolvedPrefetch:
        """Apply the table in the module docstring; fetch what is missing concurrently."""
        deadline = self.gateway.deadline() if self.gateway is not None else None
        resolved = ResolvedPrefetch()
        sent = request.prefetch if isinstance(request.prefetch, dict) else {}
        jobs: dict[str, str | dict[str, Any]] = {}
        why: dict[str, str] = {}  # what to report for a key if nothing can be fetched
        for key, template in service.prefetch.items():
            value = sent.get(key)
            if key in sent and value is None:
                resolved.data[key] = None
            elif key in sent and classify_value(value) is None and not _next_link(value):
                resolved.data[key] = value
            elif isinstance(value, Mapping) and classify_value(value) is None:
                first_page = value.load() if isinstance(value, LazyResource) else dict(value)
                jobs[key], why[key] = first_page, PAGED_NO_SERVER
            else:
                try:
                    jobs[key] = fill_template(template, request.context)
                except TemplateError:
                    resolved.unavailable[key] = UNFILLABLE
                    continue
                problem = classify_value(value) if key in sent else None
                why[key] = f"{problem}; no FHIR server to fetch it from" if problem else NO_SERVER
        outcomes = Counter(
            {"prefetched": len(resolved.data), "unfillable": len(resolved.unavailable)}
        )
        if jobs and (not request.fhir_server or self.gateway is None):
            resolved.unavailable.update(why)
            outcomes["unavailable"] += len(why)
        elif jobs:
            self._fetch(request, jobs, resolved, deadline, outcomes)
        if metrics.enabled() and self.gateway is not None:
            allowed = self._allowed(request.fhir_server)
            metrics.prefetch_outcomes(request.fhir_server, allowed, +outcomes)
        return resolved

    def _allowed(self, fhir_server: str | None) -> bool:
        """Whether the host may be a metrics label (an allowed server, not any client's)."""
        if self.gateway is None:
            return False
        try:
            return bool(fhir_server) and bool(self.gateway.policy.check(fhir_server or ""))
        except FhirForbiddenServer:
            return False

    def _fetch(
        self,
        request: HookRequest,
        jobs: dict[str, str | dict[str, Any]],
        resolved: ResolvedPrefetch,
        deadline: Any,
        outcomes: Counter[str],
    ) -> None:
        assert request.fhir_server is not None and self.gateway is not None
        try:
            self.gateway.policy.check(request.fhir_server)
        except FhirForbiddenServer as exc:
            log.warning("refused to fetch prefetch from a FHIR server: %s", exc)
            metrics.prefetch_outcomes(request.fhir_server, False, {"refused": len(jobs)})
            raise FhirServerNotAllowed(
                "fhirServer is not on this service's FHIR server allow-list; "
                "send the data as prefetch or ask the operator to allow the server",
                details={"reason": str(exc), "keys": sorted(jobs)},
            ) from None
        target = FhirTarget(request.fhir_server, _access_token(request))
        for key, result in self.gateway.fetch_many(target, jobs, deadline).items():
            if isinstance(result, FhirError):
                resolved.unavailable[key] = failure_reason(result)
                outcomes[result.reason] += 1
            else:
                resolved.data[key] = result
                outcomes["fetched"] += 1


def init_app(app: Flask) -> None:
    """Install the prefetch policy as app.extensions["cds_prefetch"]."""
    policy = ServerPolicy.from_settings(
        app.config["FHIR_SERVER_ALLOWLIST"], app.config["FHIR_ALLOW_LOOPBACK_HTTP"]
    )
    gateway = FhirGateway(GatewaySettings.from_config(app.config), policy)
    app.extensions["cds_fhir_gateway"] = gateway
    app.extensions["cds_prefetch"] = FetchingPrefetch(gateway)
    # urllib3 logs each request line (patient ids in the query) at DEBUG: never let it through.
    logging.getLogger("urllib3.connectionpool").addFilter(_drop_debug)


def _drop_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG
