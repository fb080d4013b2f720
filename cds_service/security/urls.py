"""Which JWK Set URLs may be fetched at all (https, or loopback http in tests)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1 literals."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_jku_url(url: object, *, allow_loopback_http: bool) -> str:
    """Return the URL if a key set may be fetched from it, else raise ValueError."""
    if not isinstance(url, str) or not url:
        raise ValueError("a jku URL must be a non-empty string")
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValueError(f"jku URL {url!r} must not carry credentials")
    if not parts.hostname:
        raise ValueError(f"jku URL {url!r} has no host")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and allow_loopback_http and is_loopback_host(parts.hostname):
        return url
    raise ValueError(f"jku URL {url!r} must use https")
