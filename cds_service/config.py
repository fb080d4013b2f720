"""Settings: defaults, then CDS_-prefixed environment variables, then the caller's config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cds_service.errors import ConfigError

# Every setting the service reads, with its default. The environment variable is the key
# prefixed with CDS_ (for example CDS_AUTH). Keep README's configuration table in step.
DEFAULTS: dict[str, Any] = {
    # Profile: "production" (default) or "local" (make serve: auth off, console on).
    "PROFILE": "production",
    "PUBLIC_BASE_URL": "",
    # A 10,000-resource prefetch is about 10 MB: a long chart must not be refused.
    "MAX_REQUEST_BYTES": 32 * 1024 * 1024,
    "MAX_JSON_DEPTH": 64,
    # Slow and hostile clients: a request's headers and body must arrive within
    # REQUEST_READ_SECONDS; an idle keep-alive connection closes after IDLE_CONNECTION_SECONDS.
    "REQUEST_READ_SECONDS": 30,
    "IDLE_CONNECTION_SECONDS": 60,
    "MAX_CONNECTIONS": 1000,
    "MAX_HEADER_BYTES": 64 * 1024,
    "MAX_FEEDBACK_ITEMS": 1000,
    # A worker whose memory stays above this after a large request is recycled (0: never).
    "WORKER_MAX_RSS_MIB": 150,
    "MAX_BUNDLE_ENTRIES": 20000,
    "VALIDATE_RESPONSES": True,
    # Logging: level of every logger; "text" lines or "json" lines on stderr.
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",
    "DATA_DIR": "data",
    # Security.
    "AUTH": "required",
    "TRUSTED_ISSUERS_FILE": "",
    "SANDBOX_PROFILE": False,
    "REDIS_URL": "",
    "RATE_LIMIT": "6000 per minute",
    "JWT_LEEWAY_SECONDS": 30,
    # CDS clients issue tokens for minutes (spec: 5 minutes recommended); a replay store that
    # forgets (a Redis restart) then reopens a short window only.
    "JWT_MAX_LIFETIME_SECONDS": 300,
    "JWKS_TIMEOUT_SECONDS": 2.0,
    "JWKS_CACHE_SECONDS": 3600,
    "JWKS_MIN_REFETCH_SECONDS": 10,
    "JWKS_ALLOW_LOOPBACK_HTTP": False,
    "REDIS_KEY_PREFIX": "cds:",
    "MAX_PREFETCH_KEYS": 64,
    "MAX_DRAFT_ORDERS": 500,
    # FHIR access.
    "FHIR_SERVER_ALLOWLIST": "",
    "FHIR_ALLOW_LOOPBACK_HTTP": False,
    "FHIR_TIMEOUT_SECONDS": 2.0,
    "FHIR_BUDGET_SECONDS": 0.4,
    "FHIR_MAX_PAGES": 20,
    "FHIR_MAX_RESOURCES": 20000,
    "FHIR_MAX_RESPONSE_BYTES": 32 * 1024 * 1024,
    "FHIR_MAX_RETRIES": 2,
    "FHIR_RETRY_BACKOFF_SECONDS": 0.05,
    "FHIR_MAX_WORKERS": 32,
    # One slow or failing FHIR server (origin) must not starve calls naming another.
    "FHIR_MAX_CONCURRENT_PER_SERVER": 8,
    "FHIR_BREAKER_FAILURES": 5,
    "FHIR_BREAKER_SECONDS": 30.0,
    # Persistence.
    "DATABASE_URL": "",
    "DATABASE_TIMEOUT_SECONDS": 5.0,
    "DATABASE_POOL_SIZE": 5,
    "AUDIT_HASH_KEY": "",
    "AUDIT_RETENTION_DAYS": 365,
    "AUDIT_QUEUE_SIZE": 10000,
    # Tester's console.
    "CONSOLE": False,
    "FIXTURES_DIR": "fixtures",
    # Guideline knowledge: a site may point at its own overrides file.
    "SITE_POLICY_FILE": "",
    # Governance: save every hook call as a replayable fixture here. Off when empty;
    # the captures hold patient data.
    "CAPTURE_DIR": "",
    # Performance: allocations between young-generation garbage collections (Python's
    # default 700 makes a 10 MB prefetch pay ~3x its parse time in collections); 0 = default.
    "GC_GEN0_THRESHOLD": 50_000,
    # No longer read (the per-resource memo was removed); accepted so old settings start.
    "MAPPING_MEMO_ENTRIES": 20_000,
    "PREFETCH_MEMO_RESOURCES": 20_000,
    # Operations: GET /metrics (Prometheus text) and how long /readyz waits.
    "METRICS": True,
    "READY_TIMEOUT_SECONDS": 1.0,
    # Benchmarks: an app built by benchmarks.floor.create_bench_app serves the floor endpoint
    # POST /_bench/empty-cards. The product app (create_app) never registers it.
    "BENCH_FLOOR_ENDPOINT": False,
}

# What the "local" profile changes: a developer's laptop, never a hospital network.
LOCAL_PROFILE: dict[str, Any] = {
    "AUTH": "disabled",
    "CONSOLE": True,
    "FHIR_ALLOW_LOOPBACK_HTTP": True,
    "FHIR_SERVER_ALLOWLIST": "http://127.0.0.1,http://localhost",
    "PUBLIC_BASE_URL": "http://127.0.0.1:8080",
}

_MIB = 1024 * 1024
# Inclusive bounds of every numeric setting: a value outside them stops start-up.
BOUNDS: dict[str, tuple[float, float]] = {
    "MAX_REQUEST_BYTES": (1024, 1024 * _MIB),
    "MAX_JSON_DEPTH": (4, 1000),
    "REQUEST_READ_SECONDS": (1, 3600),
    "IDLE_CONNECTION_SECONDS": (1, 3600),
    "MAX_CONNECTIONS": (10, 100_000),
    "MAX_HEADER_BYTES": (4096, _MIB),
    "MAX_FEEDBACK_ITEMS": (1, 100_000),
    "WORKER_MAX_RSS_MIB": (0, 1024 * 1024),
    "MAX_BUNDLE_ENTRIES": (1, 1_000_000),
    "JWT_LEEWAY_SECONDS": (0, 300),
    "JWT_MAX_LIFETIME_SECONDS": (10, 86_400),
    "JWKS_TIMEOUT_SECONDS": (0.05, 60),
    "JWKS_CACHE_SECONDS": (0, 7 * 86_400),
    "JWKS_MIN_REFETCH_SECONDS": (0, 86_400),
    "MAX_PREFETCH_KEYS": (1, 10_000),
    "MAX_DRAFT_ORDERS": (1, 100_000),
    "FHIR_TIMEOUT_SECONDS": (0.05, 300),
    "FHIR_BUDGET_SECONDS": (0.01, 300),
    "FHIR_MAX_PAGES": (1, 10_000),
    "FHIR_MAX_RESOURCES": (1, 10_000_000),
    "FHIR_MAX_RESPONSE_BYTES": (1024, 1024 * _MIB),
    "FHIR_MAX_RETRIES": (0, 10),
    "FHIR_RETRY_BACKOFF_SECONDS": (0, 10),
    "FHIR_MAX_WORKERS": (1, 1024),
    "FHIR_MAX_CONCURRENT_PER_SERVER": (1, 1024),
    "FHIR_BREAKER_FAILURES": (1, 10_000),
    "FHIR_BREAKER_SECONDS": (0.1, 86_400),
    "DATABASE_TIMEOUT_SECONDS": (0.1, 300),
    "DATABASE_POOL_SIZE": (1, 1000),
    "AUDIT_RETENTION_DAYS": (1, 36_500),
    "AUDIT_QUEUE_SIZE": (1, 10_000_000),
    "GC_GEN0_THRESHOLD": (0, 100_000_000),
    "MAPPING_MEMO_ENTRIES": (0, 100_000_000),
    "PREFETCH_MEMO_RESOURCES": (0, 100_000_000),
    "READY_TIMEOUT_SECONDS": (0.05, 30),
}

# Settings that take one of a few words (compared case-insensitively for LOG_LEVEL).
CHOICES: dict[str, tuple[str, ...]] = {
    "PROFILE": ("production", "local"),
    "AUTH": ("required", "disabled"),
    "LOG_LEVEL": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "LOG_FORMAT": ("text", "json"),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _number_text(value: float) -> str:
    return f"{value:,}".replace(",", "_") if isinstance(value, int) else f"{value:g}"


def describe(key: str) -> str:
    """What a setting accepts, in words (for error lines and `--help`)."""
    default = DEFAULTS[key]
    if key in CHOICES:
        return "one of " + ", ".join(CHOICES[key])
    if isinstance(default, bool):
        return "a boolean (true/false, 1/0, yes/no, on/off)"
    if key in BOUNDS:
        low, high = BOUNDS[key]
        kind = "an integer" if isinstance(default, int) else "a number"
        return f"{kind} from {_number_text(low)} to {_number_text(high)}"
    return "a string"


def _refuse(key: str, raw: Any) -> ConfigError:
    return ConfigError(f"CDS_{key} must be {describe(key)}, not {raw!r}")


def convert(key: str, raw: Any) -> Any:
    """One setting's value (an environment string or a config value), converted and checked."""
    default = DEFAULTS[key]
    if isinstance(default, bool):
        return _boolean(key, raw)
    if isinstance(default, int | float):
        return _number(key, raw, integer=isinstance(default, int))
    if not isinstance(raw, str):
        raise _refuse(key, raw)
    return _choice(key, raw) if key in CHOICES else raw


def _boolean(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise _refuse(key, raw)


def _number(key: str, raw: Any, *, integer: bool) -> float:
    value: float
    if isinstance(raw, str):
        try:
            value = int(raw.strip()) if integer else float(raw.strip())
        except ValueError:
            raise _refuse(key, raw) from None
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        if integer and isinstance(raw, float) and not raw.is_integer():
            raise _refuse(key, raw)
        value = int(raw) if integer else float(raw)
    else:
        raise _refuse(key, raw)
    low, high = BOUNDS[key]
    # NaN fails every comparison: `not low <= value <= high` refuses it too.
    if not low <= value <= high:
        raise _refuse(key, raw)
    return value


def _choice(key: str, value: str) -> str:
    choices = CHOICES[key]
    if key == "LOG_LEVEL":
        value = value.strip().upper()
    if value not in choices:
        raise _refuse(key, value)
    return value


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Merge defaults, the profile, CDS_* environment variables and explicit overrides.

    Environment and `overrides` values are converted and checked alike; the first bad one
    raises ConfigError with one line naming the setting and what it accepts.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    settings = dict(DEFAULTS)
    profile_raw = overrides.get("PROFILE") or environ.get("CDS_PROFILE") or DEFAULTS["PROFILE"]
    profile = convert("PROFILE", profile_raw)
    if profile == "local":
        settings.update(LOCAL_PROFILE)
    for key in DEFAULTS:
        env_value = environ.get(f"CDS_{key}")
        if env_value is not None:
            settings[key] = convert(key, env_value)
    for key, value in overrides.items():
        # Keys that are not settings (Flask's own, such as TESTING) pass through unchanged.
        settings[key] = convert(key, value) if key in DEFAULTS else value
    settings["PROFILE"] = profile
    return settings
