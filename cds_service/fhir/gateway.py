"""FHIR gateway: pooled, concurrent, time-budgeted reads and searches (CDS Hooks 2.0.1 Prefetch)."""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin

import orjson
import requests
from requests.adapters import HTTPAdapter

from cds_service.fhir.allowlist import ServerPolicy
from cds_service.fhir.errors import (
    FhirConnectionError,
    FhirError,
    FhirForbiddenServer,
    FhirHttpError,
    FhirMalformed,
    FhirTimeout,
    FhirTooLarge,
)
from cds_service.fhir.lanes import POOL_CLASSES, Deadline, Lanes, run_within

__all__ = [
    "FhirConnectionError",
    "FhirError",
    "FhirForbiddenServer",
    "FhirGateway",
    "FhirHttpError",
    "FhirMalformed",
    "FhirTarget",
    "FhirTimeout",
    "FhirTooLarge",
    "GatewaySettings",
]
_ = Deadline  # re-exported: callers import it from here

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3
_POOL_SIZE = 32


@dataclass(frozen=True)
class GatewaySettings:
    """The FHIR_* settings the gateway reads from app.config."""

    budget: float = 0.4
    timeout: float = 2.0
    max_pages: int = 20
    max_resources: int = 20000
    max_response_bytes: int = 32 * 1024 * 1024
    max_retries: int = 2
    backoff: float = 0.05
    max_workers: int = 32
    per_server: int = 8
    breaker_failures: int = 5
    breaker_seconds: float = 30.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> GatewaySettings:
        return cls(
            budget=float(config.get("FHIR_BUDGET_SECONDS", cls.budget)),
            timeout=float(config.get("FHIR_TIMEOUT_SECONDS", cls.timeout)),
            max_pages=int(config.get("FHIR_MAX_PAGES", cls.max_pages)),
            max_resources=int(config.get("FHIR_MAX_RESOURCES", cls.max_resources)),
            max_response_bytes=int(config.get("FHIR_MAX_RESPONSE_BYTES", cls.max_response_bytes)),
            max_retries=int(config.get("FHIR_MAX_RETRIES", cls.max_retries)),
            backoff=float(config.get("FHIR_RETRY_BACKOFF_SECONDS", cls.backoff)),
            max_workers=int(config.get("FHIR_MAX_WORKERS", cls.max_workers)),
            per_server=int(config.get("FHIR_MAX_CONCURRENT_PER_SERVER", cls.per_server)),
            breaker_failures=int(config.get("FHIR_BREAKER_FAILURES", cls.breaker_failures)),
            breaker_seconds=float(config.get("FHIR_BREAKER_SECONDS", cls.breaker_seconds)),
        )


@dataclass(frozen=True)
class FhirTarget:
    """Where and as whom to fetch: the request's fhirServer and its access token."""

    base: str
    access_token: str | None = field(default=None, repr=False)


class _WatchedAdapter(HTTPAdapter):
    """Connections whose sockets the fetch's Deadline can shut (fhir.lanes)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOL_CLASSES)


# One Session and one set of lanes per process: created lazily after a gunicorn fork.
_process_lock = threading.Lock()
_process_state: dict[str, Any] = {}


def _new_session() -> requests.Session:
    session = requests.Session()
    # No .netrc credentials or proxy variables from the environment, and no cookies carried
    # from one user's request to another's.
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = _WatchedAdapter(pool_connections=_POOL_SIZE, pool_maxsize=_POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def process_session_and_lanes(settings: GatewaySettings) -> tuple[requests.Session, Lanes]:
    """The per-process connection pool and per-FHIR-server fetch lanes."""
    with _process_lock:
        if _process_state.get("pid") != os.getpid():
            if _process_state:  # inherited over a fork: this process must not use them
                _process_state["session"].close()
                _process_state["lanes"].shutdown()
            _process_state.clear()
            threads = max(1, min(settings.per_server, settings.max_workers))
            _process_state.update(
                pid=os.getpid(),
                session=_new_session(),
                lanes=Lanes(threads, settings.breaker_failures, settings.breaker_seconds),
            )
        return _process_state["session"], _process_state["lanes"]


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or HTTP-date); None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class FhirGateway:
    """Fetches prefetch queries from an allow-listed FHIR server within a time budget."""

    def __init__(self, settings: GatewaySettings, policy: ServerPolicy) -> None:
        self.settings = settings
        self.policy = policy

    # Looked up on use, not kept: an app built before a gunicorn fork must not share sockets.
    @property
    def session(self) -> requests.Session:
        return process_session_and_lanes(self.settings)[0]

    @property
    def lanes(self) -> Lanes:
        return process_session_and_lanes(self.settings)[1]

    def deadline(self) -> Deadline:
        return Deadline(self.settings.budget)

    def fetch_many(
        self, target: FhirTarget, jobs: Mapping[str, str | dict[str, Any]], deadline: Deadline
    ) -> dict[str, Any]:
        """Run every job at once: a query string is fetched, a Bundle has its next pages followed.

        Each result is the resource/Bundle, or the FhirError that stopped it. Jobs run in the
        server's lane (bounded threads, circuit breaker); when the budget ends, the sockets
        still being read are shut down and queued jobs cancelled.
        """
        origin = self.policy.check(target.base)
        lane = self.lanes.get(f"{origin.scheme}://{origin.host}:{origin.port}")
        results: dict[str, Any] = {}
        futures: dict[str, Future[Any]] = {}
        for key, job in jobs.items():
            if not lane.breaker.allow():
                results[key] = FhirConnectionError("circuit breaker open for this server")
                continue
            futures[key] = lane.pool.submit(
                run_within, deadline, self._run_recorded, lane.breaker, target, job, deadline
            )
        _, pending = wait(futures.values(), timeout=max(0.0, deadline.remaining()) + 0.05)
        if pending:
            deadline.expire()
        for key, future in futures.items():
            if not future.done():
                future.cancel()
                results[key] = FhirTimeout("time budget exhausted")
                continue
            error = future.exception()
            if error is not None and not isinstance(error, FhirError):
                log.error("fhir fetch of %s failed unexpectedly: %s", key, type(error).__name__)
                error = FhirMalformed("unexpected failure while reading the response")
            results[key] = error if error is not None else future.result()
        failed = {k: v.reason for k, v in results.items() if isinstance(v, FhirError)}
        log.info("fhir fetch: %d jobs, failed: %s", len(jobs), failed or "none")
        return results

    def _run_recorded(
        self, breaker: Any, target: FhirTarget, job: str | dict[str, Any], deadline: Deadline
    ) -> Any:
        """Run a job and tell the server's breaker whether the server answered."""
        try:
            result = self._run_job(target, job, deadline)
        except (FhirTimeout, FhirConnectionError) as exc:
            breaker.record(False)
            raise exc from None
        except FhirHttpError as exc:
            breaker.record(exc.status is None or exc.status < 500)
            raise
        except FhirError:
            breaker.record(True)  # it answered; what it said is another matter
            raise
        breaker.record(True)
        return result

    def _run_job(self, target: FhirTarget, job: str | dict[str, Any], deadline: Deadline) -> Any:
        if isinstance(job, str):
            return self.fetch(target, job, deadline)
        return self.follow_pages(target, job, deadline)

    def fetch(self, target: FhirTarget, query: str, deadline: Deadline) -> Any:
        """One prefetch query (relative to fhirServer): a resource, or all pages of a Bundle."""
        url = self._absolute(target.base, query)
        body = self._get(target, url, deadline)
        if body.get("resourceType") == "Bundle":
            return self.follow_pages(target, body, deadline)
        if body.get("resourceType") == "OperationOutcome":
            raise FhirMalformed("server answered with an OperationOutcome")
        return body

    def follow_pages(self, target: FhirTarget, bundle: dict[str, Any], deadline: Deadline) -> Any:
        """Merge `link[relation=next]` pages into one Bundle, within page and resource bounds."""
        entries = list(bundle.get("entry") or [])
        page, pages = bundle, 1
        while (next_url := _next_link(page)) is not None:
            pages += 1
            if pages > self.settings.max_pages:
                raise FhirTooLarge("more pages than FHIR_MAX_PAGES")
            self.policy.check_within(target.base, next_url)
            page = self._get(target, next_url, deadline)
            if page.get("resourceType") != "Bundle":
                raise FhirMalformed("a next page is not a Bundle")
            entries.extend(page.get("entry") or [])
            if len(entries) > self.settings.max_resources:
                raise FhirTooLarge("more resources than FHIR_MAX_RESOURCES")
        if len(entries) > self.settings.max_resources:
            raise FhirTooLarge("more resources than FHIR_MAX_RESOURCES")
        merged = {k: v for k, v in bundle.items() if k not in ("link", "entry")}
        if entries:
            merged["entry"] = entries
        return merged

    def _absolute(self, base: str, query: str) -> str:
        path = query.split("?", 1)[0]
        if ":" in path or query.startswith("//"):
            raise FhirForbiddenServer("prefetch queries must be relative to fhirServer")
        url = base.rstrip("/") + "/" + query.lstrip("/")
        self.policy.check_within(base, url)
        return url

    def _get(self, target: FhirTarget, url: str, deadline: Deadline) -> dict[str, Any]:
        """GET, retrying 429/502/503/504 a bounded number of times while the budget allows."""
        attempt = 0
        while True:
            try:
                return self._get_once(target, url, deadline)
            except FhirHttpError as exc:
                delay = self._retry_delay(exc, attempt, deadline)
                if delay is None:
                    raise
            except FhirConnectionError:
                delay = self._retry_delay(None, attempt, deadline)
                if delay is None:
                    raise
            attempt += 1
            time.sleep(delay)

    def _retry_delay(
        self, exc: FhirHttpError | None, attempt: int, deadline: Deadline
    ) -> float | None:
        if attempt >= self.settings.max_retries:
            return None
        if exc is not None and exc.status not in RETRY_STATUSES:
            return None
        delay = self.settings.backoff * (2**attempt) * (0.5 + random.random())
        if exc is not None and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        # Only retry when the retried request can still finish inside the budget.
        if delay + 0.01 >= deadline.remaining():
            return None
        return delay

    def _get_once(self, target: FhirTarget, url: str, deadline: Deadline) -> dict[str, Any]:
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                response = self._send(target, url, deadline)
                if response.is_redirect:
                    location = response.headers.get("Location", "")
                    response.close()
                    url = urljoin(url, location)
                    # Redirects may stay on the request's server, never go elsewhere.
                    self.policy.check_within(target.base, url)
                    continue
                with response:
                    if response.status_code >= 400:
                        raise FhirHttpError(
                            f"HTTP {response.status_code}",
                            status=response.status_code,
                            retry_after=_retry_after(response.headers.get("Retry-After")),
                        )
                    return self._read_json(response, deadline)
            finally:
                # Read or closed: its socket may now serve another fetch, never to be shut here.
                deadline.unwatch()
        raise FhirHttpError("too many redirects")

    def _send(self, target: FhirTarget, url: str, deadline: Deadline) -> requests.Response:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise FhirTimeout("time budget exhausted")
        headers = {"Accept": "application/fhir+json"}
        if target.access_token:
            headers["Authorization"] = f"Bearer {target.access_token}"
        timeout = min(self.settings.timeout, remaining)
        try:
            return self.session.get(
                url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
            )
        except requests.Timeout as exc:
            raise FhirTimeout("request timed out") from exc
        except requests.RequestException as exc:
            raise FhirConnectionError(f"cannot reach server ({type(exc).__name__})") from exc

    def _read_json(self, response: requests.Response, deadline: Deadline) -> dict[str, Any]:
        """Stream the body, stopping at FHIR_MAX_RESPONSE_BYTES or the deadline."""
        limit = self.settings.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FhirTooLarge("response larger than FHIR_MAX_RESPONSE_BYTES")
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise FhirTooLarge("response larger than FHIR_MAX_RESPONSE_BYTES")
                if deadline.remaining() <= 0:
                    raise FhirTimeout("time budget exhausted while reading")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise FhirTimeout("response read timed out or broke off") from exc
        if deadline.remaining() <= 0:  # its socket was shut when the budget ended
            raise FhirTimeout("time budget exhausted while reading")
        try:
            body = orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise FhirMalformed("response is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirMalformed("response is not a FHIR resource")
        return body


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None
