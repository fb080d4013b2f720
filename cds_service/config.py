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
    # Slow and hostile clients (issue 18): a request's headers and body must arrive within
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
    "LOG_LEVEL": "INFO",
    "DATA_DIR": "data",
    # Security (issue 6).
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
    # FHIR access (issue 5).
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
    # One slow or failing FHIR server (origin) must not starve calls naming another (issue 18).
    "FHIR_MAX_CONCURRENT_PER_SERVER": 8,
    "FHIR_BREAKER_FAILURES": 5,
    "FHIR_BREAKER_SECONDS": 30.0,
    # Persistence (issue 7).
    "DATABASE_URL": "",
    "DATABASE_TIMEOUT_SECONDS": 5.0,
    "DATABASE_POOL_SIZE": 5,
    "AUDIT_HASH_KEY": "",
    "AUDIT_RETENTION_DAYS": 365,
    "AUDIT_QUEUE_SIZE": 10000,
    # Tester's console (issue 9).
    "CONSOLE": False,
    "FIXTURES_DIR": "fixtures",
    # Guideline knowledge: a site may point at its own overrides file (issue 4).
    "SITE_POLICY_FILE": "",
    # Governance (issue 16): save every hook call as a replayable fixture here. Off when empty;
    # the captures hold patient data.
    "CAPTURE_DIR": "",
    # Performance (issue 8): allocations between young-generation garbage collections (Python's
    # default 700 makes a 10 MB prefetch pay ~3x its parse time in collections); 0 = default.
    "GC_GEN0_THRESHOLD": 50_000,
    # No longer read (issue 17 removed the per-resource memo); accepted so old settings start.
    "MAPPING_MEMO_ENTRIES": 20_000,
    "PREFETCH_MEMO_RESOURCES": 20_000,
    # Benchmarks: an app built by benchmarks.floor.create_bench_app serves the floor endpoint
    # POST /_bench/empty-cards. The product app (create_app) never registers it.
    "BENCH_FLOOR_ENDPOINT": False,
}

# Bounds (inclusive) of numeric settings: a value outside them stops start-up with one line.
BOUNDS: dict[str, tuple[float, float]] = {
    "MAX_REQUEST_BYTES": (1024, 1024 * 1024 * 1024),
    "MAX_JSON_DEPTH": (4, 1000),
    "REQUEST_READ_SECONDS": (1, 3600),
    "IDLE_CONNECTION_SECONDS": (1, 3600),
    "MAX_CONNECTIONS": (10, 100_000),
    "MAX_HEADER_BYTES": (4096, 1024 * 1024),
    "MAX_FEEDBACK_ITEMS": (1, 100_000),
    "WORKER_MAX_RSS_MIB": (0, 1024 * 1024),
    "JWT_MAX_LIFETIME_SECONDS": (10, 86_400),
    "FHIR_MAX_WORKERS": (1, 1024),
    "FHIR_MAX_CONCURRENT_PER_SERVER": (1, 1024),
    "FHIR_BREAKER_FAILURES": (1, 10_000),
    "FHIR_BREAKER_SECONDS": (0.1, 86_400),
}

# What the "local" profile changes: a developer's laptop, never a hospital network.
LOCAL_PROFILE: dict[str, Any] = {
    "AUTH": "disabled",
    "CONSOLE": True,
    "FHIR_ALLOW_LOOPBACK_HTTP": True,
    "FHIR_SERVER_ALLOWLIST": "http://127.0.0.1,http://localhost",
    "PUBLIC_BASE_URL": "http://127.0.0.1:8080",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(key: str, raw: str, default: Any) -> Any:
    """Turn an environment string into the type of the setting's default."""
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(f"expected a boolean, got {raw!r}")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"CDS_{key}: {exc}") from exc
    return raw


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Merge defaults, the profile, CDS_* environment variables and explicit overrides."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    settings = dict(DEFAULTS)
    profile = overrides.get("PROFILE") or environ.get("CDS_PROFILE") or DEFAULTS["PROFILE"]
    if profile not in ("production", "local"):
        raise ConfigError(f"CDS_PROFILE must be 'production' or 'local', not {profile!r}")
    if profile == "local":
        settings.update(LOCAL_PROFILE)
    for key, default in DEFAULTS.items():
        env_value = environ.get(f"CDS_{key}")
        if env_value is not None:
            settings[key] = _coerce(key, env_value, default)
    settings.update(overrides)
    settings["PROFILE"] = profile
    if settings["AUTH"] not in ("required", "disabled"):
        raise ConfigError(f"CDS_AUTH must be 'required' or 'disabled', not {settings['AUTH']!r}")
    check_bounds(settings)
    return settings


def check_bounds(settings: Mapping[str, Any]) -> None:
    """Refuse a numeric setting outside BOUNDS, naming it (one line)."""
    for key, (low, high) in BOUNDS.items():
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"CDS_{key} must be a number, not {value!r}")
        if not low <= value <= high:
            raise ConfigError(f"CDS_{key} must be between {low:g} and {high:g}, not {value!r}")
