"""Which FHIR servers the service may contact: SSRF guard for fhirServer, redirects, next links."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from cds_service.errors import ConfigError
from cds_service.fhir.errors import FhirForbiddenServer

_DEFAULT_PORTS = {"https": 443, "http": 80}
# Characters that parsers disagree on (backslash, whitespace, controls): refuse, do not guess.
_UNSAFE = re.compile(r"[\\\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Origin:
    """A parsed base URL: scheme, lower-case host, explicit port and path segments."""

    scheme: str
    host: str
    port: int | None  # None: any port (an allow-list entry for a loopback host without a port)
    segments: tuple[str, ...]

    def contains(self, other: Origin) -> bool:
        """True when `other` is this base or below it (whole path segments)."""
        return (
            (self.scheme, self.host) == (other.scheme, other.host)
            and self.port in (None, other.port)
            and other.segments[: len(self.segments)] == self.segments
        )


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_origin(url: str) -> Origin:
    """Parse an absolute http(s) URL strictly; raise FhirForbiddenServer on anything odd."""
    if not isinstance(url, str) or not url or _UNSAFE.search(url):
        raise FhirForbiddenServer("URL is empty or holds unsafe characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FhirForbiddenServer("URL cannot be parsed") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise FhirForbiddenServer("URL scheme must be https (or http on loopback)")
    if "@" in parts.netloc:
        raise FhirForbiddenServer("URL must not carry user information")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FhirForbiddenServer("URL has no host")
    segments = tuple(s for s in parts.path.split("/") if s)
    if any(unquote(s) in (".", "..") or "/" in unquote(s) for s in segments):
        raise FhirForbiddenServer("URL path must not contain dot segments or encoded slashes")
    return Origin(scheme, host, port or _DEFAULT_PORTS[scheme], segments)


def _has_port(url: str) -> bool:
    return urlsplit(url).port is not None


@dataclass(frozen=True)
class ServerPolicy:
    """FHIR_SERVER_ALLOWLIST + FHIR_ALLOW_LOOPBACK_HTTP, applied to every outgoing URL."""

    allowed: tuple[Origin, ...]
    allow_loopback_http: bool = False

    @classmethod
    def from_settings(cls, allowlist: str, allow_loopback_http: bool) -> ServerPolicy:
        """Parse the comma-separated base-URL prefixes; a malformed entry stops the app."""
        origins = []
        for entry in (e.strip() for e in allowlist.split(",")):
            if not entry:
                continue
            try:
                origin = parse_origin(entry)
            except FhirForbiddenServer as exc:
                raise ConfigError(f"CDS_FHIR_SERVER_ALLOWLIST entry {entry!r}: {exc}") from exc
            if is_loopback(origin.host) and not _has_port(entry):
                # Development servers on this machine pick their ports freely.
                origin = Origin(origin.scheme, origin.host, None, origin.segments)
            origins.append(origin)
        return cls(tuple(origins), bool(allow_loopback_http))

    def check(self, url: str) -> Origin:
        """Return the parsed URL when the service may contact it, else raise."""
        origin = parse_origin(url)
        if origin.scheme == "http" and not (self.allow_loopback_http and is_loopback(origin.host)):
            raise FhirForbiddenServer("plain http is allowed only for loopback development servers")
        if not any(allowed.contains(origin) for allowed in self.allowed):
            raise FhirForbiddenServer("server is not on the FHIR server allow-list")
        return origin

    def check_within(self, base: str, url: str) -> Origin:
        """A redirect or next link: allowed, and on the same server below the same base."""
        target = self.check(url)
        if not parse_origin(base).contains(target):
            raise FhirForbiddenServer("link leaves the FHIR server the request named")
        return target
